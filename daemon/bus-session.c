/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-session.c - org.libsmp.Smp1.Session: D-Bus glue only.
 */
#include <errno.h>
#include <string.h>

#include "manager.h"

static int prop_str(sd_bus *bus, const char *path, const char *iface, const char *prop,
		    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;
	const char *v = NULL;

	if (strcmp(prop, "Id") == 0)
		v = s->id;
	else if (strcmp(prop, "Client") == 0)
		v = s->client;
	else if (strcmp(prop, "Operator") == 0)
		v = s->operator_name;
	else if (strcmp(prop, "Zone") == 0)
		v = zone_to_string(s->zone);
	else if (strcmp(prop, "PigmentLot") == 0)
		v = s->pigment_lot;
	else if (strcmp(prop, "PigmentManufacturer") == 0)
		v = s->pigment_maker;
	else if (strcmp(prop, "CartridgeId") == 0)
		v = s->cartridge_id;
	else if (strcmp(prop, "CartridgeLot") == 0)
		v = s->cartridge_lot;
	else if (strcmp(prop, "Needle") == 0)
		v = s->needle;
	else if (strcmp(prop, "EndReason") == 0)
		v = s->end_reason ? s->end_reason : "";
	if (!v)
		return -ENOENT;
	return sd_bus_message_append(reply, "s", v);
}

static int prop_device(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;

	return sd_bus_message_append(reply, "o", s->device ? s->device->path : "/");
}

static int prop_time(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;

	if (strcmp(prop, "PatchTestTime") == 0)
		return sd_bus_message_append(reply, "x", s->patch_test_time);
	if (strcmp(prop, "ScreeningTime") == 0)
		return sd_bus_message_append(reply, "x", s->screening_time);
	if (strcmp(prop, "BeginTime") == 0)
		return sd_bus_message_append(reply, "t", s->begin_realtime_us);
	if (strcmp(prop, "EndTime") == 0)
		return sd_bus_message_append(reply, "t", s->end_realtime_us);
	if (strcmp(prop, "NeedleOnTime") == 0)
		return sd_bus_message_append(reply, "t",
					     s->active && s->device ?
						     s->device->ctl.monitor.needle_on_us :
						     s->needle_on_us);
	return -ENOENT;
}

/* The policy's session limits, in force for every open session (H16). */
static int prop_limit(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;
	const struct policy *p = &s->manager->policy;

	if (strcmp(prop, "MaxDuration") == 0)
		return sd_bus_message_append(reply, "u", p->max_session_s.value);
	if (strcmp(prop, "MaxNeedleOn") == 0)
		return sd_bus_message_append(reply, "u", p->max_needle_on_s.value);
	return -ENOENT;
}

static int prop_active(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;

	return sd_bus_message_append(reply, "b", s->active);
}

static int require_owner(struct session *s, sd_bus_message *m, sd_bus_error *error)
{
	const char *sender = sd_bus_message_get_sender(m);

	if (!s->active)
		return sd_bus_error_setf(error, SMPD_ERROR_SESSION_ENDED, "session %s has ended",
					 s->id);
	if (!sender || strcmp(sender, s->owner) != 0)
		return sd_bus_error_setf(error, SMPD_ERROR_NOT_CLAIMED,
					 "session %s belongs to another client", s->id);
	return 0;
}

static int method_change_zone(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;
	const char *zone;
	enum zone z;
	int r;

	r = sd_bus_message_read(m, "s", &zone);
	if (r < 0)
		return r;
	z = zone_from_string(zone);
	if (z == _ZONE_INVALID)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "unknown zone \"%s\" (hairline, temples, crown or scar)",
					 zone);
	r = polkit_verify(s->manager, m, SMPD_ACTION_OPERATE, method_change_zone, s, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = require_owner(s, m, error);
	if (r < 0)
		return r;
	r = session_change_zone(s, z, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, NULL);
}

static int method_annotate(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;
	const char *text;
	char why[128];
	int r;

	r = sd_bus_message_read(m, "s", &text);
	if (r < 0)
		return r;
	if (!safety_text_check(text, why, sizeof(why)))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "the annotation %s; " SAFETY_TEXT_RULE, why);
	r = polkit_verify(s->manager, m, SMPD_ACTION_OPERATE, method_annotate, s, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = require_owner(s, m, error);
	if (r < 0)
		return r;
	r = session_annotate(s, text, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, NULL);
}

/* Ending stops the needle: safe, so the owner needs no further authorization. */
static int method_end(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct session *s = userdata;
	int r;

	r = require_owner(s, m, error);
	if (r < 0)
		return r;
	r = session_end_recorded(s, "ended by the client");
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
					 "the needle is stopped but the session stays open: its end "
					 "could not be recorded (%s); it ends on record when smpd stops",
					 strerror(-r));
	return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable session_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Id", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Device", "o", prop_device, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
	SD_BUS_PROPERTY("Client", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Operator", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Zone", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("PigmentLot", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PigmentManufacturer", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("CartridgeId", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("CartridgeLot", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Needle", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PatchTestTime", "x", prop_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("ScreeningTime", "x", prop_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("BeginTime", "t", prop_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("EndTime", "t", prop_time, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
	SD_BUS_PROPERTY("NeedleOnTime", "t", prop_time, 0, 0),
	SD_BUS_PROPERTY("MaxDuration", "u", prop_limit, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("MaxNeedleOn", "u", prop_limit, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Active", "b", prop_active, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("EndReason", "s", prop_str, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_METHOD_WITH_ARGS("ChangeZone", SD_BUS_ARGS("s", zone), SD_BUS_NO_RESULT,
				method_change_zone, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Annotate", SD_BUS_ARGS("s", text), SD_BUS_NO_RESULT,
				method_annotate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("EndSession", "", "", method_end, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("Warning", SD_BUS_ARGS("s", kind, "u", seconds_left), 0),
	SD_BUS_SIGNAL_WITH_ARGS("Ended", SD_BUS_ARGS("s", reason), 0),
	SD_BUS_VTABLE_END,
};

int bus_session_register(struct session *s)
{
	return sd_bus_add_object_vtable(s->manager->bus, &s->slot, s->path, SMPD_IFACE_SESSION,
					session_vtable, s);
}
