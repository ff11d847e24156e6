/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsmp internals: the objects behind the opaque handles. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

#include "libsmp.h"
#include "smp-cleanup.h"

#define _public_ __attribute__((visibility("default")))

#define SMP_BUS_NAME "org.libsmp.Smp1"
#define SMP_ROOT_PATH "/org/libsmp/Smp1"
#define SMP_IFACE_MANAGER "org.libsmp.Smp1.Manager"
#define SMP_IFACE_DEVICE "org.libsmp.Smp1.Device"
#define SMP_IFACE_SESSION "org.libsmp.Smp1.Session"

/* the least wait of a call that may meet polkit's prompt (libsmp.h) */
#define SMP_INTERACTIVE_TIMEOUT_USEC (300ULL * 1000000)

/* For _cleanup_(smp_client_unrefp): drop the reference at scope exit. */
static inline void smp_client_unrefp(smp_client **c)
{
	if (*c)
		smp_client_unref(*c);
}

#define SMP_N_PARAMS 4
#define SMP_N_TELEMETRY 16

/* Detail of the last failed call on one handle. */
struct smp_error {
	char *name;
	char *message;
	bool has_limit;
	enum smp_param param;
	enum smp_bound bound;
	uint32_t requested, limit;
	char *layer, *source;
};

struct smp_limit {
	uint32_t value[2];
	char *layer[2];
	char *source[2];
};

struct smp_device {
	unsigned n_ref;
	smp_client *client;		 /* weak; NULL once the client is gone */
	smp_device *reg_prev, *reg_next; /* the client's registry of live objects */
	char *path;
	bool gone;
	bool claimed_by_me;

	char *serial, *model, *firmware, *backend;
	enum smp_device_state state;
	char *fault_kind, *fault_message, *device_faults;
	bool claimed;
	uint32_t client_timeout_ms; /* smpd's ClientTimeoutMs; 0 = not known */
	char *session_path;
	smp_session *session; /* strong; the open session */
	bool have_setpoints[SMP_N_PARAMS];
	uint32_t setpoints[SMP_N_PARAMS];
	bool have_limits;
	struct smp_limit limits[SMP_N_PARAMS];
	bool cart_present, cart_used, cart_expired;
	char *cart_id, *cart_lot, *cart_needle;
	uint32_t cart_diameter_um, cart_expiry_day;

	bool have_telemetry;
	int64_t telemetry[SMP_N_TELEMETRY];
	sd_bus_slot *telemetry_slot;

	struct smp_error err;
};

struct smp_session {
	unsigned n_ref;
	smp_client *client; /* weak; NULL for audit-log sessions and once gone */
	smp_session *reg_prev, *reg_next;
	char *path; /* NULL for audit-log sessions */
	bool live;

	char *id, *device_serial, *device_path, *client_pseudonym, *operator_name, *zone;
	char *pigment_lot, *pigment_maker, *cartridge_id, *cartridge_lot, *needle;
	char *end_reason;
	int64_t patch_test_time, screening_time;
	uint64_t begin_usec, end_usec, needle_on_usec;
	uint32_t max_duration_s, max_needle_on_s; /* 0: not known */
	bool active;

	struct smp_error err;
};

struct smp_event {
	enum smp_event_type type;
	smp_device *device;
	smp_session *session;
	const char *kind;
	const char *message;
	uint32_t seconds_left;
};

struct smp_client {
	unsigned n_ref;
	sd_bus *bus;
	bool disconnected;
	bool dispatching; /* inside smp_client_dispatch() */
	bool daemon_running;
	char *daemon_owner; /* unique name of smpd, NULL when not running */
	uint64_t method_timeout;
	uint64_t heartbeat_next; /* CLOCK_MONOTONIC us of the next Heartbeat; 0 = now */

	smp_device **devices;
	size_t n_devices;

	/* every live device and session object made from this client */
	smp_device *reg_devices;
	smp_session *reg_sessions;

	smp_event_handler handler;
	void *userdata;

	struct smp_error err;
};

/* util.c */
void smp_error_clear(struct smp_error *e);
int smp_error_set(struct smp_error *e, int r, const char *name, const char *message);
int smp_error_from_bus(struct smp_error *e, const sd_bus_error *error, int r);
int smp_errno_from_name(const char *name, int fallback);
int smp_strdup_to(char **dst, const char *src);
char *smp_strdup_or_empty(const char *s);

/* client.c */
int smp_client_call(smp_client *c, struct smp_error *err, const char *path, const char *iface,
		    const char *member, sd_bus_message **ret_reply, const char *types, ...);
int smp_client_call_msg(smp_client *c, struct smp_error *err, sd_bus_message *m,
			sd_bus_message **ret_reply);
int smp_client_new_method(smp_client *c, const char *path, const char *iface, const char *member,
			  sd_bus_message **ret);
void smp_client_emit(smp_client *c, enum smp_event_type type, smp_device *d, smp_session *s,
		     const char *kind, const char *message, uint32_t seconds_left);
smp_device *smp_client_device_by_path(smp_client *c, const char *path);
int smp_client_session_by_path(smp_client *c, const char *path, smp_session **ret);
bool smp_client_from_daemon(smp_client *c, sd_bus_message *m);

/* device.c */
int smp_device_new(smp_client *c, const char *path, smp_device **ret);
int smp_device_parse_properties(smp_device *d, sd_bus_message *m);
int smp_device_handle_telemetry(smp_device *d, sd_bus_message *m);
void smp_device_mark_gone(smp_device *d);
int smp_device_update(smp_device *d);

/* session.c */
int smp_session_new_live(smp_client *c, const char *path, smp_session **ret);
smp_session *smp_session_new_record(void);
int smp_session_parse_properties(smp_session *s, sd_bus_message *m);
void smp_session_mark_gone(smp_session *s, const char *reason);
int smp_session_update(smp_session *s);
