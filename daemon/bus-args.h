/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-args.h - readers of smpd's structured D-Bus arguments (bus-args.c).
 * Each returns 0, or a negative errno with error set to a named error;
 * on failure *ret is untouched.  Strings point into the message.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "audit-log.h"
#include "policy.h"
#include "safety.h"
#include "smp-frame.h"

/* SetParameters keys, by enum param: "Voltage", "Current", ... */
extern const char *const bus_param_keys[_PARAM_MAX];

/* A SetParameters value beyond the protocol's 16-bit field (> 65535). */
struct param_overflow {
	bool set;
	enum param param;
	uint32_t requested;
};

/* Device.SetParameters a{sv}: every parameter given, or kept from current.
 * A value above 65535 is not an error here: *ret_overflow names the first
 * one (and *ret holds 65535 for it), for the caller to refuse as
 * LimitExceeded at the protocol layer. */
int bus_read_params(sd_bus_message *m, const struct smp_params *current, bool have_current,
		    struct smp_params *ret, struct param_overflow *ret_overflow, sd_bus_error *error);

/* Manager.BeginSession a{sv} (docs/dbus.md). */
struct metadata {
	const char *client, *operator_name, *zone, *lot, *maker, *override_reason;
	int64_t patch_test_time, screening_time;
};

int bus_read_metadata(sd_bus_message *m, struct metadata *md, sd_bus_error *error);

/* The session request BeginSession and CheckSession judge, from the
 * metadata read above (the strings stay the message's). */
struct session_request bus_session_request(const struct metadata *md);

/* ExportLog / ListPastSessions filter a{sv}: Session s, Client s, PigmentLot s,
 * CartridgeId s, CartridgeLot s, Since t, Until t. */
int bus_read_export_filter(sd_bus_message *msg, struct audit_export_filter *f, sd_bus_error *error);
