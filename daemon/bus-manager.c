/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-manager.c - org.libsmp.Smp1.Manager at /org/libsmp/Smp1.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"

static int prop_api_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
			    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	return sd_bus_message_append(reply, "u", (uint32_t)SMPD_API_VERSION);
}

static int prop_policy_digest(sd_bus *bus, const char *path, const char *iface, const char *prop,
			      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	return sd_bus_message_append(reply, "s", m->policy.digest);
}

static int prop_audit_ok(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	return sd_bus_message_append(reply, "b", m->audit_error >= 0);
}

static int method_list_devices(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "o");
	for (struct device *d = m->devices; d && r >= 0; d = d->next)
		if (!d->gone)
			r = sd_bus_message_append(reply, "o", d->path);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_list_sessions(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "o");
	for (struct session *s = m->sessions; s && r >= 0; s = s->next)
		r = sd_bus_message_append(reply, "o", s->path);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

struct metadata {
	const char *client, *operator_name, *zone, *lot, *maker, *override_reason;
	int64_t patch_test_time, screening_time;
};

static int read_metadata(sd_bus_message *m, struct metadata *md, sd_bus_error *error)
{
	static const struct { const char *key; const char *sig; } keys[] = {
		{ "ClientPseudonym", "s" }, { "Operator", "s" }, { "Zone", "s" },
		{ "PigmentLot", "s" }, { "PigmentManufacturer", "s" }, { "OverrideReason", "s" },
		{ "PatchTestTime", "x" }, { "ScreeningTime", "x" },
	};
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key, *contents;
		size_t k;
		char type;

		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(key, keys[k].key) == 0)
				break;
		if (k == sizeof(keys) / sizeof(keys[0]))
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "unknown session field \"%s\"", key);
		r = sd_bus_message_peek_type(m, &type, &contents);
		if (r < 0)
			return r;
		if (!contents || strcmp(contents, keys[k].sig) != 0)
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "session field %s must have type \"%s\", not \"%s\"",
						 key, keys[k].sig, contents ? contents : "?");
		if (keys[k].sig[0] == 's') {
			const char *v;

			r = sd_bus_message_read(m, "v", "s", &v);
			if (r < 0)
				return r;
			switch (k) {
			case 0: md->client = v; break;
			case 1: md->operator_name = v; break;
			case 2: md->zone = v; break;
			case 3: md->lot = v; break;
			case 4: md->maker = v; break;
			case 5: md->override_reason = v; break;
			}
		} else {
			int64_t v;

			r = sd_bus_message_read(m, "v", "x", &v);
			if (r < 0)
				return r;
			if (k == 6)
				md->patch_test_time = v;
			else
				md->screening_time = v;
		}
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	if (!md->client)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "ClientPseudonym is required");
	if (!md->operator_name)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "Operator is required");
	if (!md->zone)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "Zone is required");
	if (zone_from_string(md->zone) == _ZONE_INVALID)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "unknown zone \"%s\" (hairline, temples, crown or scar)", md->zone);
	if (md->override_reason && !safety_text_valid(md->override_reason))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "OverrideReason must be 1-1024 bytes of text");
	return 0;
}

static int method_begin_session(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct metadata md = { 0 };
	struct session_request req;
	struct session *s;
	struct device *d;
	const char *path;
	int r;

	r = sd_bus_message_read(msg, "o", &path);
	if (r < 0)
		return r;
	r = read_metadata(msg, &md, error);
	if (r < 0)
		return r;
	d = device_find_by_path(m, path);
	if (!d || d->gone)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "no device %s", path);

	r = polkit_verify(m, msg, SMPD_ACTION_OPERATE, method_begin_session, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	if (md.override_reason) {
		r = polkit_verify(m, msg, SMPD_ACTION_OVERRIDE, method_begin_session, m, error);
		if (r <= 0)
			return r < 0 ? r : 1;
	}

	req = (struct session_request) {
		.client = md.client,
		.operator_name = md.operator_name,
		.zone = zone_from_string(md.zone),
		.pigment_lot = md.lot,
		.patch_test_time = md.patch_test_time,
		.screening_time = md.screening_time,
		.override_reason = md.override_reason,
	};
	r = session_begin(m, d, sd_bus_message_get_sender(msg), &req, md.maker, &s, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, "o", s->path);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	char err[POLICY_ERROR_MAX];
	int r;

	r = polkit_verify(m, msg, SMPD_ACTION_CONFIGURE, method_reload, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = manager_reload(m, err, sizeof(err));
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_CONFIG,
					 "%s; the last good policy stays in force", err);
	return sd_bus_reply_method_return(msg, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("APIVersion", "u", prop_api_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PolicyDigest", "s", prop_policy_digest, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("AuditAvailable", "b", prop_audit_ok, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_METHOD_WITH_ARGS("ListDevices", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", devices),
				method_list_devices, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListSessions", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", sessions),
				method_list_sessions, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("BeginSession",
				SD_BUS_ARGS("o", device, "a{sv}", metadata),
				SD_BUS_RESULT("o", session),
				method_begin_session, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("DeviceAdded", SD_BUS_ARGS("o", device), 0),
	SD_BUS_SIGNAL_WITH_ARGS("DeviceRemoved", SD_BUS_ARGS("o", device), 0),
	SD_BUS_SIGNAL_WITH_ARGS("SessionBegun", SD_BUS_ARGS("o", session), 0),
	SD_BUS_VTABLE_END,
};

int bus_manager_register(struct manager *m)
{
	return sd_bus_add_object_vtable(m->bus, NULL, SMPD_PATH, SMPD_IFACE_MANAGER,
					manager_vtable, m);
}
