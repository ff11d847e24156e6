/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsmp: the connection to smpd, signal dispatch, the device list. */
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "libsmp-private.h"

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
static int on_name_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

void smp_client_emit(smp_client *c, enum smp_event_type type, smp_device *d, smp_session *s,
		     const char *kind, const char *message, uint32_t seconds_left)
{
	struct smp_event ev = {
		.type = type,
		.device = d,
		.session = s,
		.kind = kind ? kind : "",
		.message = message ? message : "",
		.seconds_left = seconds_left,
	};

	if (!c->handler)
		return;
	/* The handler may drop the last outside reference to any of these. */
	smp_client_ref(c);
	smp_device_ref(d);
	smp_session_ref(s);
	c->handler(c, &ev, c->userdata);
	smp_session_unref(s);
	smp_device_unref(d);
	smp_client_unref(c);
}

bool smp_client_from_daemon(smp_client *c, sd_bus_message *m)
{
	const char *sender = sd_bus_message_get_sender(m);

	/* Only smpd's own signals count: anyone on the bus can emit one. */
	return c->daemon_owner && sender && strcmp(sender, c->daemon_owner) == 0;
}

smp_device *smp_client_device_by_path(smp_client *c, const char *path)
{
	for (size_t i = 0; i < c->n_devices; i++)
		if (strcmp(c->devices[i]->path, path) == 0)
			return c->devices[i];
	return NULL;
}

int smp_client_session_by_path(smp_client *c, const char *path, smp_session **ret)
{
	for (smp_session *s = c->reg_sessions; s; s = s->reg_next)
		if (s->path && strcmp(s->path, path) == 0) {
			*ret = smp_session_ref(s);
			return 0;
		}
	return smp_session_new_live(c, path, ret);
}

int smp_client_new_method(smp_client *c, const char *path, const char *iface, const char *member,
			  sd_bus_message **ret)
{
	if (c->disconnected)
		return -ENOTCONN;
	return sd_bus_message_new_method_call(c->bus, ret, SMP_BUS_NAME, path, iface, member);
}

/*
 * The methods smpd asks polkit for (docs/dbus.md, "Authorization"): with
 * interactive authorization their answer may wait for a person at
 * polkit's prompt.
 */
static bool asks_polkit(sd_bus_message *m)
{
	static const char *const methods[][2] = {
		{ SMP_IFACE_MANAGER, "BeginSession" },	   { SMP_IFACE_MANAGER, "Reload" },
		{ SMP_IFACE_MANAGER, "VerifyLog" },	   { SMP_IFACE_MANAGER, "ExportLog" },
		{ SMP_IFACE_MANAGER, "ListPastSessions" }, { SMP_IFACE_DEVICE, "Claim" },
		{ SMP_IFACE_DEVICE, "SetParameters" },	   { SMP_IFACE_DEVICE, "Start" },
		{ SMP_IFACE_DEVICE, "ClearFault" },	   { SMP_IFACE_SESSION, "ChangeZone" },
		{ SMP_IFACE_SESSION, "Annotate" },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (sd_bus_message_is_method_call(m, methods[i][0], methods[i][1]) > 0)
			return true;
	return false;
}

/*
 * How long a call waits for smpd.  A call that may wait for a person at
 * polkit's prompt waits longer than smpd waits for polkit: smpd gives up
 * after PolkitTimeoutMs (at most 120 s) per action, and BeginSession with
 * an OverrideReason asks two in turn; libsmp.h documents it.
 */
static uint64_t call_timeout(const smp_client *c, sd_bus_message *m)
{
	uint64_t t = c->method_timeout;

	if (sd_bus_message_get_allow_interactive_authorization(m) <= 0 || !asks_polkit(m))
		return t; /* 0: the bus's own (25 s, or $SYSTEMD_BUS_TIMEOUT) */
	if (t == 0 && sd_bus_get_method_call_timeout(c->bus, &t) < 0)
		t = 0;
	return t > SMP_INTERACTIVE_TIMEOUT_USEC ? t : SMP_INTERACTIVE_TIMEOUT_USEC;
}

int smp_client_call_msg(smp_client *c, struct smp_error *err, sd_bus_message *m,
			sd_bus_message **ret_reply)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	if (c->disconnected)
		return smp_error_set(err, -ENOTCONN, NULL, "the connection to the bus is lost");
	r = sd_bus_call(c->bus, m, call_timeout(c, m), &error, &reply);
	if (r < 0) {
		r = smp_error_from_bus(err, &error, r);
		sd_bus_error_free(&error);
		return r;
	}
	smp_error_clear(err);
	if (ret_reply)
		*ret_reply = reply;
	else
		sd_bus_message_unref(reply);
	return 0;
}

int smp_client_call(smp_client *c, struct smp_error *err, const char *path, const char *iface,
		    const char *member, sd_bus_message **ret_reply, const char *types, ...)
{
	sd_bus_message *m = NULL;
	va_list ap;
	int r;

	r = smp_client_new_method(c, path, iface, member, &m);
	if (r < 0)
		return smp_error_set(err, r, NULL, NULL);
	if (types) {
		va_start(ap, types);
		r = sd_bus_message_appendv(m, types, ap);
		va_end(ap);
		if (r < 0) {
			sd_bus_message_unref(m);
			return smp_error_set(err, r, NULL, NULL);
		}
	}
	r = smp_client_call_msg(c, err, m, ret_reply);
	sd_bus_message_unref(m);
	return r;
}

static int client_add_device(smp_client *c, const char *path, bool announce)
{
	smp_device *d, **list;
	int r;

	if (smp_client_device_by_path(c, path))
		return 0;
	r = smp_device_new(c, path, &d);
	if (r < 0)
		return r;
	r = smp_device_update(d);
	if (r < 0) {
		/* gone again before we could read it: not a device for us */
		smp_device_mark_gone(d);
		smp_device_unref(d);
		return r;
	}
	list = realloc(c->devices, (c->n_devices + 1) * sizeof(*list));
	if (!list) {
		smp_device_mark_gone(d);
		smp_device_unref(d);
		return -ENOMEM;
	}
	c->devices = list;
	c->devices[c->n_devices++] = d;
	if (announce)
		smp_client_emit(c, SMP_EVENT_DEVICE_ADDED, d, NULL, NULL, NULL, 0);
	return 0;
}

static void client_remove_device(smp_client *c, const char *path)
{
	for (size_t i = 0; i < c->n_devices; i++) {
		smp_device *d = c->devices[i];

		if (strcmp(d->path, path) != 0)
			continue;
		memmove(c->devices + i, c->devices + i + 1,
			(c->n_devices - i - 1) * sizeof(*c->devices));
		c->n_devices--;
		smp_device_mark_gone(d);
		smp_client_emit(c, SMP_EVENT_DEVICE_REMOVED, d, NULL, NULL, NULL, 0);
		smp_device_unref(d);
		return;
	}
}

static int client_enumerate(smp_client *c, bool announce)
{
	sd_bus_message *reply = NULL;
	const char *path;
	int r;

	r = smp_client_call(c, &c->err, SMP_ROOT_PATH, SMP_IFACE_MANAGER, "ListDevices", &reply,
			    NULL);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "o");
	while (r >= 0 && (r = sd_bus_message_read(reply, "o", &path)) > 0)
		(void)client_add_device(c, path, announce); /* a vanished device is no error */
	sd_bus_message_unref(reply);
	return r < 0 ? smp_error_set(&c->err, r, NULL, "cannot parse smpd's device list") : 0;
}

/* smpd left the bus: every device and session of it is gone with it. */
static void client_daemon_lost(smp_client *c, bool announce)
{
	while (c->n_devices > 0)
		client_remove_device(c, c->devices[c->n_devices - 1]->path);
	/* The handler may drop any session: hold the open ones first. */
	{
		size_t n = 0, i = 0;
		smp_session **open;

		for (smp_session *s = c->reg_sessions; s; s = s->reg_next)
			n += s->live && s->active;
		open = calloc(n + 1, sizeof(*open));
		for (smp_session *s = c->reg_sessions; s; s = s->reg_next) {
			if (!s->live || !s->active)
				continue;
			smp_session_mark_gone(s, "smpd went away");
			if (open && i < n)
				open[i++] = smp_session_ref(s);
		}
		for (size_t k = 0; announce && k < i; k++)
			smp_client_emit(c, SMP_EVENT_SESSION_ENDED, NULL, open[k],
					open[k]->end_reason, NULL, 0);
		for (size_t k = 0; k < i; k++)
			smp_session_unref(open[k]);
		free(open);
	}
	free(c->daemon_owner);
	c->daemon_owner = NULL;
	if (c->daemon_running && announce) {
		c->daemon_running = false;
		smp_client_emit(c, SMP_EVENT_DAEMON_LOST, NULL, NULL, NULL, NULL, 0);
	}
	c->daemon_running = false;
}

static int on_name_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	smp_client *c = userdata;
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
	    strcmp(name, SMP_BUS_NAME) != 0)
		return 0;
	if (c->daemon_owner)
		client_daemon_lost(c, true);
	if (new_owner[0]) {
		c->daemon_owner = strdup(new_owner);
		if (!c->daemon_owner)
			return 0;
		c->daemon_running = true;
		smp_client_emit(c, SMP_EVENT_DAEMON_APPEARED, NULL, NULL, NULL, NULL, 0);
		(void)client_enumerate(c, true);
	}
	return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	smp_client *c = userdata;

	if (c->disconnected)
		return 0;
	client_daemon_lost(c, true);
	c->disconnected = true;
	smp_client_emit(c, SMP_EVENT_DISCONNECTED, NULL, NULL, NULL, NULL, 0);
	return 0;
}

static int on_manager_signal(smp_client *c, sd_bus_message *m)
{
	const char *path;

	if (sd_bus_message_read(m, "o", &path) <= 0)
		return 0;
	if (sd_bus_message_is_signal(m, SMP_IFACE_MANAGER, "DeviceAdded"))
		(void)client_add_device(c, path, true);
	else if (sd_bus_message_is_signal(m, SMP_IFACE_MANAGER, "DeviceRemoved"))
		client_remove_device(c, path);
	else if (sd_bus_message_is_signal(m, SMP_IFACE_MANAGER, "SessionBegun")) {
		smp_session *s = NULL;

		if (smp_client_session_by_path(c, path, &s) >= 0) {
			smp_client_emit(c, SMP_EVENT_SESSION_BEGUN,
					s->device_path ? smp_client_device_by_path(c, s->device_path) :
							 NULL,
					s, NULL, NULL, 0);
			smp_session_unref(s);
		}
	}
	return 0;
}

static smp_session *client_find_session(smp_client *c, const char *path)
{
	for (smp_session *s = c->reg_sessions; s; s = s->reg_next)
		if (s->path && strcmp(s->path, path) == 0)
			return s;
	return NULL;
}

/*
 * A device's PropertiesChanged: the new values come in the signal, and are
 * taken from it.  Only a property smpd announces as invalidated (Limits,
 * DeviceFaults: docs/dbus.md) is read back, with GetAll.  No method call
 * for the common case: this runs inside the application's dispatch, and a
 * synchronous round trip to smpd per change (several in a row after a start
 * or a fault) held back everything behind it, the claimant's Heartbeat
 * included, by as many round trips through a loaded bus.
 */
static int device_apply_changed(smp_device *d, sd_bus_message *m)
{
	const char *iface;
	char **invalidated = NULL;
	bool fetch;
	int r;

	r = sd_bus_message_read(m, "s", &iface);
	if (r < 0 || strcmp(iface, SMP_IFACE_DEVICE) != 0)
		return smp_device_update(d); /* not the interface libsmp knows: read it all */
	r = smp_device_parse_properties(d, m);
	if (r >= 0)
		r = sd_bus_message_read_strv(m, &invalidated);
	if (r < 0)
		return smp_device_update(d); /* malformed: read it all */
	fetch = invalidated && invalidated[0];
	for (size_t i = 0; invalidated && invalidated[i]; i++)
		free(invalidated[i]);
	free(invalidated);
	return fetch ? smp_device_update(d) : 0;
}

/*
 * The same for a session: Zone, Active, EndReason, MaxDuration and
 * MaxNeedleOn come in the signal (a reload announces the limits of every
 * open session while needles run); only Device and EndTime are announced
 * as invalidated and read back.
 */
static int session_apply_changed(smp_session *s, sd_bus_message *m)
{
	const char *iface;
	char **invalidated = NULL;
	bool fetch;
	int r;

	r = sd_bus_message_read(m, "s", &iface);
	if (r < 0 || strcmp(iface, SMP_IFACE_SESSION) != 0)
		return smp_session_update(s);
	r = smp_session_parse_properties(s, m);
	if (r >= 0)
		r = sd_bus_message_read_strv(m, &invalidated);
	if (r < 0)
		return smp_session_update(s);
	fetch = invalidated && invalidated[0];
	for (size_t i = 0; invalidated && invalidated[i]; i++)
		free(invalidated[i]);
	free(invalidated);
	return fetch ? smp_session_update(s) : 0;
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	smp_client *c = userdata;
	const char *path = sd_bus_message_get_path(m), *iface;
	smp_device *d;
	smp_session *s;

	if (!path || !smp_client_from_daemon(c, m))
		return 0;

	iface = sd_bus_message_get_interface(m);
	if (strcmp(path, SMP_ROOT_PATH) == 0 && iface && strcmp(iface, SMP_IFACE_MANAGER) == 0)
		return on_manager_signal(c, m);

	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged")) {
		d = smp_client_device_by_path(c, path);
		if (d) {
			if (device_apply_changed(d, m) >= 0)
				smp_client_emit(c, SMP_EVENT_DEVICE_CHANGED, d, NULL, NULL, NULL, 0);
			return 0;
		}
		s = client_find_session(c, path);
		if (s)
			(void)session_apply_changed(s, m);
		return 0;
	}

	if (sd_bus_message_is_signal(m, SMP_IFACE_DEVICE, "Fault")) {
		const char *kind, *message;

		d = smp_client_device_by_path(c, path);
		if (!d || sd_bus_message_read(m, "ss", &kind, &message) < 0)
			return 0;
		smp_client_emit(c, SMP_EVENT_FAULT, d, NULL, kind, message, 0);
		return 0;
	}

	if (sd_bus_message_is_signal(m, SMP_IFACE_SESSION, "Warning")) {
		const char *kind;
		uint32_t left;

		s = client_find_session(c, path);
		if (!s || sd_bus_message_read(m, "su", &kind, &left) < 0)
			return 0;
		smp_client_emit(c, SMP_EVENT_SESSION_WARNING,
				s->device_path ? smp_client_device_by_path(c, s->device_path) : NULL,
				s, kind, NULL, left);
		return 0;
	}

	if (sd_bus_message_is_signal(m, SMP_IFACE_SESSION, "Ended")) {
		const char *reason;

		s = client_find_session(c, path);
		if (!s || sd_bus_message_read(m, "s", &reason) < 0)
			return 0;
		smp_session_ref(s);
		(void)smp_session_update(s);
		s->active = false;
		if (!s->end_reason || !s->end_reason[0])
			(void)smp_strdup_to(&s->end_reason, reason);
		smp_client_emit(c, SMP_EVENT_SESSION_ENDED,
				s->device_path ? smp_client_device_by_path(c, s->device_path) : NULL,
				s, reason, NULL, 0);
		smp_session_unref(s);
		return 0;
	}
	return 0;
}

static int client_new(const char *address, bool user, smp_client **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(smp_client_unrefp) smp_client *c = NULL;
	const char *owner;
	int r;

	if (!ret)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->n_ref = 1;

	if (address) {
		r = sd_bus_new(&c->bus);
		if (r >= 0)
			r = sd_bus_set_address(c->bus, address);
		if (r >= 0)
			r = sd_bus_set_bus_client(c->bus, 1);
		if (r >= 0)
			r = sd_bus_start(c->bus);
	} else if (user)
		r = sd_bus_open_user(&c->bus);
	else
		r = sd_bus_open_system(&c->bus);
	if (r < 0)
		return r;

	/* Matches live as long as the bus: floating slots. */
	r = sd_bus_add_match(c->bus, NULL,
			     "type='signal',sender='org.freedesktop.DBus',"
			     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
			     "arg0='" SMP_BUS_NAME "'",
			     on_name_owner, c);
	if (r >= 0)
		r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
					"org.freedesktop.DBus.Local", "Disconnected",
					on_disconnected, c);
	if (r >= 0)
		r = sd_bus_add_match(c->bus, NULL,
				     "type='signal',interface='" SMP_IFACE_MANAGER "',"
				     "path='" SMP_ROOT_PATH "'",
				     on_signal, c);
	if (r >= 0)
		r = sd_bus_add_match(c->bus, NULL,
				     "type='signal',interface='org.freedesktop.DBus.Properties',"
				     "member='PropertiesChanged',path_namespace='" SMP_ROOT_PATH "'",
				     on_signal, c);
	if (r >= 0)
		r = sd_bus_add_match(c->bus, NULL,
				     "type='signal',interface='" SMP_IFACE_DEVICE "',member='Fault'",
				     on_signal, c);
	if (r >= 0)
		r = sd_bus_add_match(c->bus, NULL, "type='signal',interface='" SMP_IFACE_SESSION "'",
				     on_signal, c);
	if (r < 0)
		return r;

	r = sd_bus_call_method(c->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetNameOwner", &error, &reply, "s",
			       SMP_BUS_NAME);
	if (r >= 0) {
		r = sd_bus_message_read(reply, "s", &owner);
		if (r >= 0) {
			c->daemon_owner = strdup(owner);
			r = c->daemon_owner ? 0 : -ENOMEM;
		}
		if (r < 0)
			return r;
		c->daemon_running = true;
		(void)client_enumerate(c, false);
	} else if (!sd_bus_error_has_name(&error, "org.freedesktop.DBus.Error.NameHasNoOwner")) {
		return r;
	}
	smp_error_clear(&c->err);
	*ret = c;
	c = NULL;
	return 0;
}

_public_ int smp_client_new(smp_client **ret_client)
{
	return client_new(NULL, false, ret_client);
}

_public_ int smp_client_new_user(smp_client **ret_client)
{
	return client_new(NULL, true, ret_client);
}

_public_ int smp_client_new_address(const char *address, smp_client **ret_client)
{
	if (!address || !address[0])
		return -EINVAL;
	return client_new(address, false, ret_client);
}

_public_ smp_client *smp_client_ref(smp_client *c)
{
	if (c)
		c->n_ref++;
	return c;
}

static void client_free(smp_client *c)
{
	while (c->n_devices > 0) {
		smp_device *d = c->devices[--c->n_devices];

		smp_device_mark_gone(d);
		smp_device_unref(d);
	}
	free(c->devices);
	/* Objects the application still holds outlive us, detached. */
	while (c->reg_devices) {
		smp_device *d = c->reg_devices;

		smp_device_mark_gone(d);
		c->reg_devices = d->reg_next;
		d->reg_prev = d->reg_next = NULL;
		d->client = NULL;
	}
	while (c->reg_sessions) {
		smp_session *s = c->reg_sessions;

		smp_session_mark_gone(s, NULL);
		c->reg_sessions = s->reg_next;
		s->reg_prev = s->reg_next = NULL;
		s->client = NULL;
	}
	sd_bus_flush_close_unref(c->bus);
	free(c->daemon_owner);
	smp_error_clear(&c->err);
	free(c);
}

_public_ smp_client *smp_client_unref(smp_client *c)
{
	if (c && --c->n_ref == 0)
		client_free(c);
	return NULL;
}

_public_ int smp_client_get_fd(smp_client *c)
{
	if (!c)
		return -EINVAL;
	if (c->disconnected)
		return -ENOTCONN;
	return sd_bus_get_fd(c->bus);
}

_public_ int smp_client_get_events(smp_client *c)
{
	if (!c)
		return -EINVAL;
	if (c->disconnected)
		return -ENOTCONN;
	return sd_bus_get_events(c->bus);
}

/*
 * The claimant's heartbeat (H6, docs/dbus.md "When the needle runs"):
 * while the client holds a claim it calls Heartbeat() on each claimed
 * device every ClientTimeoutMs/4, from the application's own dispatch
 * (smp_client_dispatch(), smp_client_wait()) and nowhere else: an
 * application whose dispatching thread hangs stops sending, and smpd stops
 * its needle.  No thread, no timer of the library's own.  Sent without
 * expecting a reply: nothing to wait for, nothing to process.
 */
#define HEARTBEAT_DEFAULT_MS 200 /* ClientTimeoutMs of an smpd that does not say */

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* The period for the claimed devices, or 0 when nothing is claimed. */
static uint64_t heartbeat_period(smp_client *c)
{
	uint64_t period = 0;

	for (size_t i = 0; i < c->n_devices; i++) {
		smp_device *d = c->devices[i];
		uint64_t p;

		if (!d->claimed_by_me || d->gone)
			continue;
		p = (uint64_t)(d->client_timeout_ms ? d->client_timeout_ms : HEARTBEAT_DEFAULT_MS) *
		    1000 / 4;
		if (period == 0 || p < period)
			period = p;
	}
	return period;
}

/* When the next heartbeat is due (CLOCK_MONOTONIC us), UINT64_MAX for none. */
static uint64_t heartbeat_due(smp_client *c)
{
	if (c->disconnected || heartbeat_period(c) == 0)
		return UINT64_MAX;
	return c->heartbeat_next;
}

static void heartbeat_send(smp_client *c)
{
	uint64_t period, now;

	if (c->disconnected)
		return;
	period = heartbeat_period(c);
	if (period == 0) {
		c->heartbeat_next = 0; /* the first after a claim goes out at once */
		return;
	}
	now = now_usec();
	if (now < c->heartbeat_next)
		return;
	for (size_t i = 0; i < c->n_devices; i++) {
		smp_device *d = c->devices[i];
		sd_bus_message *m = NULL;
		int r;

		if (!d->claimed_by_me || d->gone)
			continue;
		r = sd_bus_message_new_method_call(c->bus, &m, SMP_BUS_NAME, d->path,
						   SMP_IFACE_DEVICE, "Heartbeat");
		if (r >= 0)
			r = sd_bus_message_set_expect_reply(m, false);
		if (r >= 0)
			(void)sd_bus_send(c->bus, m, NULL); /* a broken bus shows in the dispatch */
		sd_bus_message_unref(m);
	}
	c->heartbeat_next = now + period;
}

_public_ int smp_client_get_timeout(smp_client *c, uint64_t *ret_usec)
{
	uint64_t t, hb;
	int r;

	if (!c || !ret_usec)
		return -EINVAL;
	if (c->disconnected)
		return -ENOTCONN;
	r = sd_bus_get_timeout(c->bus, &t);
	if (r < 0)
		return r;
	hb = heartbeat_due(c);
	*ret_usec = hb < t ? hb : t;
	return 0;
}

/* Process what is queued; the caller holds a reference on c across it, as
 * an event handler may drop the last one of its own. */
static int client_dispatch(smp_client *c)
{
	int r;

	for (;;) {
		r = sd_bus_process(c->bus, NULL);
		if (r <= 0)
			break;
		if (c->disconnected)
			break;
	}
	if (r < 0 || c->disconnected) {
		if (!c->disconnected)
			on_disconnected(NULL, c, NULL);
		r = -ENOTCONN;
	}
	return r;
}

/* Both dispatches of a wait run under one reference: a handler that drops
 * the last reference during the first must not free c before the second. */
static int client_dispatch_wait(smp_client *c, bool wait, uint64_t timeout_usec)
{
	int r;

	if (!c)
		return -EINVAL;
	if (c->disconnected)
		return -ENOTCONN;
	if (c->dispatching)
		return -EBUSY; /* from inside the event handler */
	c->dispatching = true;
	smp_client_ref(c);
	r = client_dispatch(c);
	if (r >= 0)
		heartbeat_send(c);
	if (r >= 0 && wait) {
		uint64_t due = heartbeat_due(c), now = now_usec();

		/* wake for the next heartbeat */
		if (due != UINT64_MAX && (timeout_usec == UINT64_MAX || now + timeout_usec > due))
			timeout_usec = due > now ? due - now : 0;
		/* an error here (connection broken, EINTR) shows in the dispatch */
		(void)sd_bus_wait(c->bus, timeout_usec);
		r = client_dispatch(c);
		if (r >= 0)
			heartbeat_send(c);
	}
	c->dispatching = false;
	smp_client_unref(c);
	return r;
}

_public_ int smp_client_dispatch(smp_client *c)
{
	return client_dispatch_wait(c, false, 0);
}

_public_ int smp_client_wait(smp_client *c, uint64_t timeout_usec)
{
	return client_dispatch_wait(c, true, timeout_usec);
}

_public_ int smp_client_set_event_handler(smp_client *c, smp_event_handler handler, void *userdata)
{
	if (!c)
		return -EINVAL;
	c->handler = handler;
	c->userdata = userdata;
	return 0;
}

_public_ int smp_client_set_method_timeout(smp_client *c, uint64_t usec)
{
	if (!c)
		return -EINVAL;
	c->method_timeout = usec;
	return 0;
}

_public_ int smp_client_set_interactive_authorization(smp_client *c, bool allow)
{
	if (!c)
		return -EINVAL;
	/* sd-bus sets the flag on every method call made on the bus from now */
	return sd_bus_set_allow_interactive_authorization(c->bus, allow);
}

_public_ int smp_client_is_daemon_running(smp_client *c)
{
	if (!c)
		return -EINVAL;
	if (c->disconnected)
		return -ENOTCONN;
	return c->daemon_running;
}

static int manager_property(smp_client *c, const char *name, const char *type, sd_bus_message **ret)
{
	sd_bus_message *reply = NULL;
	int r;

	if (!c)
		return -EINVAL;
	r = smp_client_call(c, &c->err, SMP_ROOT_PATH, "org.freedesktop.DBus.Properties", "Get",
			    &reply, "ss", SMP_IFACE_MANAGER, name);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'v', type);
	if (r < 0) {
		sd_bus_message_unref(reply);
		(void)smp_error_set(&c->err, -EBADMSG, NULL, "smpd answered with an unexpected type");
		return -EBADMSG;
	}
	*ret = reply;
	return 0;
}

/* One unsigned property of the manager object. */
static int manager_property_u32(smp_client *c, const char *name, uint32_t *ret)
{
	sd_bus_message *reply;
	uint32_t v;
	int r;

	if (!ret)
		return -EINVAL;
	r = manager_property(c, name, "u", &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "u", &v);
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(&c->err, r, NULL, NULL);
	*ret = v;
	return 0;
}

_public_ int smp_client_get_api_version(smp_client *c, uint32_t *ret_version)
{
	return manager_property_u32(c, "APIVersion", ret_version);
}

_public_ int smp_client_get_policy_digest(smp_client *c, char **ret_digest)
{
	sd_bus_message *reply;
	const char *s;
	char *copy;
	int r;

	if (!ret_digest)
		return -EINVAL;
	r = manager_property(c, "PolicyDigest", "s", &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "s", &s);
	copy = r >= 0 ? strdup(s) : NULL;
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(&c->err, r, NULL, NULL);
	if (!copy)
		return -ENOMEM;
	*ret_digest = copy;
	return 0;
}

_public_ int smp_client_get_healing_interval_days(smp_client *c, uint32_t *ret_days)
{
	return manager_property_u32(c, "HealingIntervalDays", ret_days);
}

_public_ int smp_client_is_audit_available(smp_client *c)
{
	sd_bus_message *reply;
	int b, r;

	r = manager_property(c, "AuditAvailable", "b", &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "b", &b);
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(&c->err, r, NULL, NULL);
	return !!b;
}

_public_ int smp_client_reload(smp_client *c)
{
	if (!c)
		return -EINVAL;
	return smp_client_call(c, &c->err, SMP_ROOT_PATH, SMP_IFACE_MANAGER, "Reload", NULL, NULL);
}

_public_ size_t smp_client_get_n_devices(smp_client *c)
{
	return c ? c->n_devices : 0;
}

_public_ smp_device *smp_client_get_device(smp_client *c, size_t index)
{
	if (!c || index >= c->n_devices)
		return NULL;
	return c->devices[index];
}

_public_ smp_device *smp_client_find_device(smp_client *c, const char *serial)
{
	if (!c)
		return NULL;
	if (!serial)
		return c->n_devices == 1 ? c->devices[0] : NULL;
	for (size_t i = 0; i < c->n_devices; i++)
		if (c->devices[i]->serial && strcmp(c->devices[i]->serial, serial) == 0)
			return c->devices[i];
	return NULL;
}

_public_ int smp_client_get_sessions(smp_client *c, smp_session ***ret_sessions)
{
	sd_bus_message *reply = NULL;
	smp_session **list = NULL;
	size_t n = 0;
	const char *path;
	int r;

	if (!c || !ret_sessions)
		return -EINVAL;
	r = smp_client_call(c, &c->err, SMP_ROOT_PATH, SMP_IFACE_MANAGER, "ListSessions", &reply,
			    NULL);
	if (r < 0)
		return r;
	list = calloc(1, sizeof(*list));
	if (!list) {
		r = -ENOMEM;
		goto finish;
	}
	r = sd_bus_message_enter_container(reply, 'a', "o");
	while (r >= 0 && (r = sd_bus_message_read(reply, "o", &path)) > 0) {
		smp_session *s, **l;

		if (smp_client_session_by_path(c, path, &s) < 0)
			continue; /* ended and gone between the list and the read */
		l = realloc(list, (n + 2) * sizeof(*l));
		if (!l) {
			smp_session_unref(s);
			r = -ENOMEM;
			break;
		}
		list = l;
		list[n++] = s;
		list[n] = NULL;
	}
finish:
	sd_bus_message_unref(reply);
	if (r < 0) {
		smp_session_list_free(list);
		return smp_error_set(&c->err, r, NULL, NULL);
	}
	smp_error_clear(&c->err);
	*ret_sessions = list;
	return (int)n;
}

_public_ const char *smp_client_get_error_name(smp_client *c)
{
	return c ? c->err.name : NULL;
}

_public_ const char *smp_client_get_error_message(smp_client *c)
{
	return c ? c->err.message : NULL;
}

_public_ enum smp_event_type smp_event_get_type(const smp_event *ev)
{
	return ev ? ev->type : (enum smp_event_type)0;
}

_public_ smp_device *smp_event_get_device(const smp_event *ev)
{
	return ev ? ev->device : NULL;
}

_public_ smp_session *smp_event_get_session(const smp_event *ev)
{
	return ev ? ev->session : NULL;
}

_public_ const char *smp_event_get_kind(const smp_event *ev)
{
	return ev ? ev->kind : "";
}

_public_ const char *smp_event_get_message(const smp_event *ev)
{
	return ev ? ev->message : "";
}

_public_ uint32_t smp_event_get_seconds_left(const smp_event *ev)
{
	return ev ? ev->seconds_left : 0;
}
