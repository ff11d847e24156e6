/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-args.c - smpd's readers of structured D-Bus arguments: the a{sv}
 * dictionaries of Device.SetParameters, Manager.BeginSession and the log
 * filters of ExportLog / ListPastSessions.  Pure: they read a message and
 * fill a struct or set a named error (org.libsmp.Smp1.Error.InvalidArgument),
 * touching no device, session or bus state, so tests/fuzz links them alone.
 */
#include <errno.h>
#include <string.h>

#include "bus-args.h"
#include "manager.h" /* error names */

const char *const bus_param_keys[_PARAM_MAX] = {
	[PARAM_VOLTAGE] = "Voltage",
	[PARAM_CURRENT] = "Current",
	[PARAM_RATE] = "StrokeRate",
	[PARAM_DEPTH] = "Depth",
};

int bus_read_params(sd_bus_message *m, const struct smp_params *current, bool have_current,
		    struct smp_params *ret, struct param_overflow *ret_overflow, sd_bus_error *error)
{
	struct param_overflow ov = { .set = false };
	struct smp_params p = *current;
	bool have[_PARAM_MAX] = { false };
	int r;

	if (have_current)
		for (int q = 0; q < _PARAM_MAX; q++)
			have[q] = true;
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key, *contents;
		uint32_t v;
		int q;
		char type;

		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		for (q = 0; q < _PARAM_MAX; q++)
			if (strcmp(key, bus_param_keys[q]) == 0)
				break;
		if (q == _PARAM_MAX)
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "unknown parameter \"%s\" (Voltage, Current, StrokeRate, Depth)",
						 key);
		r = sd_bus_message_peek_type(m, &type, &contents);
		if (r < 0)
			return r;
		if (!contents || strcmp(contents, "u") != 0)
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "parameter %s must be an unsigned 32-bit integer (u), not \"%s\"",
						 key, contents ? contents : "?");
		r = sd_bus_message_read(m, "v", "u", &v);
		if (r < 0)
			return r;
		if (v > UINT16_MAX) {
			/* Beyond the wire protocol's 16-bit field: the caller
			 * refuses it as LimitExceeded at the protocol layer once
			 * the caller may set parameters (the first one counts). */
			if (!ov.set)
				ov = (struct param_overflow){ .set = true, .param = q, .requested = v };
			v = UINT16_MAX;
		}
		switch (q) {
		case PARAM_VOLTAGE:
			p.voltage_mv = (uint16_t)v;
			break;
		case PARAM_CURRENT:
			p.current_ma = (uint16_t)v;
			break;
		case PARAM_RATE:
			p.rate_chz = (uint16_t)v;
			break;
		case PARAM_DEPTH:
			p.depth_um = (uint16_t)v;
			break;
		}
		have[q] = true;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	for (int q = 0; q < _PARAM_MAX; q++)
		if (!have[q])
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "parameter %s is missing and has no earlier value",
						 bus_param_keys[q]);
	*ret = p;
	*ret_overflow = ov;
	return 0;
}

struct session_request bus_session_request(const struct metadata *md)
{
	return (struct session_request){
		.client = md->client,
		.operator_name = md->operator_name,
		.zone = zone_from_string(md->zone),
		.pigment_lot = md->lot,
		.patch_test_time = md->patch_test_time,
		.screening_time = md->screening_time,
		.override_reason = md->override_reason,
	};
}

int bus_read_metadata(sd_bus_message *m, struct metadata *md, sd_bus_error *error)
{
	static const struct {
		const char *key;
		const char *sig;
	} keys[] = {
		{ "ClientPseudonym", "s" },
		{ "Operator", "s" },
		{ "Zone", "s" },
		{ "PigmentLot", "s" },
		{ "PigmentManufacturer", "s" },
		{ "OverrideReason", "s" },
		{ "PatchTestTime", "x" },
		{ "ScreeningTime", "x" },
	};
	char why[128];
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
			case 0:
				md->client = v;
				break;
			case 1:
				md->operator_name = v;
				break;
			case 2:
				md->zone = v;
				break;
			case 3:
				md->lot = v;
				break;
			case 4:
				md->maker = v;
				break;
			case 5:
				md->override_reason = v;
				break;
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
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "ClientPseudonym is required");
	if (!md->operator_name)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "Operator is required");
	if (!md->zone)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "Zone is required");
	if (zone_from_string(md->zone) == _ZONE_INVALID)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "unknown zone \"%s\" (hairline, temples, crown or scar)",
					 md->zone);
	if (md->override_reason && !safety_text_check(md->override_reason, why, sizeof(why)))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "OverrideReason %s; " SAFETY_TEXT_RULE, why);
	if (md->maker && !safety_text_check(md->maker, why, sizeof(why)))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "PigmentManufacturer %s; " SAFETY_TEXT_RULE, why);
	return 0;
}

/* a{sv}: Session s, Client s, PigmentLot s, CartridgeId s, CartridgeLot s,
 * Since t, Until t (CLOCK_REALTIME us). */
int bus_read_export_filter(sd_bus_message *msg, struct audit_export_filter *f, sd_bus_error *error)
{
	const char *key, *contents;
	char type;
	int r;

	r = sd_bus_message_enter_container(msg, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
		bool str;

		r = sd_bus_message_read(msg, "s", &key);
		if (r < 0)
			return r;
		str = strcmp(key, "Session") == 0 || strcmp(key, "Client") == 0 ||
		      strcmp(key, "PigmentLot") == 0 || strcmp(key, "CartridgeId") == 0 ||
		      strcmp(key, "CartridgeLot") == 0;
		if (!str && strcmp(key, "Since") != 0 && strcmp(key, "Until") != 0)
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "unknown filter \"%s\" (Session, Client, PigmentLot, "
						 "CartridgeId, CartridgeLot, Since, Until)",
						 key);
		r = sd_bus_message_peek_type(msg, &type, &contents);
		if (r < 0)
			return r;
		if (!contents || strcmp(contents, str ? "s" : "t") != 0)
			return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
						 "filter %s must be of type %s", key,
						 str ? "s" : "t");
		if (strcmp(key, "Session") == 0)
			r = sd_bus_message_read(msg, "v", "s", &f->session);
		else if (strcmp(key, "Client") == 0)
			r = sd_bus_message_read(msg, "v", "s", &f->client);
		else if (strcmp(key, "PigmentLot") == 0)
			r = sd_bus_message_read(msg, "v", "s", &f->pigment_lot);
		else if (strcmp(key, "CartridgeId") == 0)
			r = sd_bus_message_read(msg, "v", "s", &f->cartridge);
		else if (strcmp(key, "CartridgeLot") == 0)
			r = sd_bus_message_read(msg, "v", "s", &f->cartridge_lot);
		else if (strcmp(key, "Since") == 0)
			r = sd_bus_message_read(msg, "v", "t", &f->since_usec);
		else
			r = sd_bus_message_read(msg, "v", "t", &f->until_usec);
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(msg);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(msg);
}
