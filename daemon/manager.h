/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager.h - smpd's state: one struct manager owns the bus, the policy,
 * the devices, the sessions, the interlock store and the audit log.
 * Bus glue lives in bus-*.c, the glue of each device in device.c, its
 * safety decisions in controller.c, the pure safety rules in safety.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

struct udev;
struct udev_monitor;

#include "audit-log.h"
#include "backend.h"
#include "bus-args.h"
#include "controller.h"
#include "devio.h"
#include "policy.h"
#include "safety.h"
#include "store.h"

#define SMPD_API_VERSION 1
#define SMPD_BUS_NAME "org.libsmp.Smp1"
#define SMPD_PATH "/org/libsmp/Smp1"
#define SMPD_DEVICE_PREFIX "/org/libsmp/Smp1/device"
#define SMPD_SESSION_PREFIX "/org/libsmp/Smp1/session"
#define SMPD_IFACE_MANAGER "org.libsmp.Smp1.Manager"
#define SMPD_IFACE_DEVICE "org.libsmp.Smp1.Device"
#define SMPD_IFACE_SESSION "org.libsmp.Smp1.Session"

/* Errors (docs/dbus.md). */
#define SMPD_ERROR_LIMIT_EXCEEDED "org.libsmp.Smp1.Error.LimitExceeded"
#define SMPD_ERROR_INVALID_ARGUMENT "org.libsmp.Smp1.Error.InvalidArgument"
#define SMPD_ERROR_NOT_AUTHORIZED "org.libsmp.Smp1.Error.NotAuthorized"
#define SMPD_ERROR_NOT_CLAIMED "org.libsmp.Smp1.Error.NotClaimed"
#define SMPD_ERROR_ALREADY_CLAIMED "org.libsmp.Smp1.Error.AlreadyClaimed"
#define SMPD_ERROR_NO_SESSION "org.libsmp.Smp1.Error.NoSession"
#define SMPD_ERROR_SESSION_ACTIVE "org.libsmp.Smp1.Error.SessionActive"
#define SMPD_ERROR_SESSION_ENDED "org.libsmp.Smp1.Error.SessionEnded"
#define SMPD_ERROR_NO_SETPOINTS "org.libsmp.Smp1.Error.NoSetpoints"
#define SMPD_ERROR_FAULT_LATCHED "org.libsmp.Smp1.Error.FaultLatched"
#define SMPD_ERROR_FAULT_PERSISTS "org.libsmp.Smp1.Error.FaultPersists"
#define SMPD_ERROR_DEVICE_REFUSED "org.libsmp.Smp1.Error.DeviceRefused"
#define SMPD_ERROR_DEVICE_ERROR "org.libsmp.Smp1.Error.DeviceError"
#define SMPD_ERROR_NO_CARTRIDGE "org.libsmp.Smp1.Error.NoCartridge"
#define SMPD_ERROR_CARTRIDGE_USED "org.libsmp.Smp1.Error.CartridgeUsed"
#define SMPD_ERROR_CARTRIDGE_EXPIRED "org.libsmp.Smp1.Error.CartridgeExpired"
#define SMPD_ERROR_NO_PIGMENT_LOT "org.libsmp.Smp1.Error.NoPigmentLot"
#define SMPD_ERROR_HEALING_INTERVAL "org.libsmp.Smp1.Error.HealingInterval"
#define SMPD_ERROR_PATCH_TEST "org.libsmp.Smp1.Error.PatchTestRequired"
#define SMPD_ERROR_SESSION_LIMIT "org.libsmp.Smp1.Error.SessionLimit"
#define SMPD_ERROR_AUDIT_UNAVAILABLE "org.libsmp.Smp1.Error.AuditUnavailable"
#define SMPD_ERROR_CONFIG "org.libsmp.Smp1.Error.ConfigError"

#define SMPD_ACTION_OPERATE "org.libsmp.Smp1.operate"
#define SMPD_ACTION_CONFIGURE "org.libsmp.Smp1.configure"
#define SMPD_ACTION_OVERRIDE "org.libsmp.Smp1.override"
#define SMPD_ACTION_AUDIT "org.libsmp.Smp1.audit"

struct manager;
struct session;

/* Throttled telemetry summary (the Telemetry signal and property). */
struct telemetry_summary {
	uint32_t samples;
	uint64_t sum_voltage, sum_current, sum_rate, sum_depth;
	int64_t sum_temp;
	uint16_t min_voltage, max_voltage, min_current, max_current;
	uint16_t min_rate, max_rate, min_depth, max_depth;
	int16_t min_temp, max_temp;
	uint64_t gaps;
};

/* The last LimitExceeded refusal on a device (the LastRefusal property). */
struct refusal {
	uint64_t serial; /* 0 = none yet; increments per refusal */
	enum param param;
	uint32_t requested;
	struct effective_bound bound; /* the limit that refused it */
	bool max;		      /* the maximum (true) or the minimum */
};

#define SMPD_SIM_SOCKETS_MAX 8

enum device_req {
	DEVICE_REQ_SET_PARAMETERS,
	DEVICE_REQ_START,
	DEVICE_REQ_STOP,
	DEVICE_REQ_CLEAR_FAULT,
};

struct device {
	struct manager *manager;
	struct device *next;
	char *path;
	struct backend *backend;
	sd_bus_slot *slot;
	sd_event_source *io_source;   /* the backend's telemetry fd, while the loop's */
	sd_event_source *ring_source; /* devio's ring fd (telemetry_on_worker) */
	bool io_watched;	      /* io_source is on */
	sd_event_source *telemetry_timer;
	sd_event_source *timer[_CTL_TIMER_MAX]; /* the controller's timers */

	/* every safety decision and the state it rests on (controller.h) */
	struct controller ctl;
	bool running_actions; /* device_run() is taking actions */

	/* the device's I/O worker (devio.h): commands go out, completions come back */
	struct devio *io;
	sd_event_source *done_source;
	sd_event_source *kick_timer; /* re-signals a cancel that a signal must deliver */
	unsigned outstanding;	     /* commands submitted, not yet completed */

	/* D-Bus requests waiting for the controller's answer (CTL_REPLY) */
	sd_bus_message *op_msg; /* the request in progress (NULL: smpd's own) */
	enum device_req op_kind;
	bool req_busy;		     /* a request made while another is in progress: */
	sd_bus_message *busy_msg;    /* ... answered at once (NULL: smpd's own) */
	sd_bus_message **estop_msgs; /* EmergencyStop calls, answered in order */
	size_t n_estop_msgs, cap_estop_msgs;

	struct smp_info info;
	struct smp_cartridge cartridge;
	uint32_t last_seq;
	bool have_seq;

	char *claimant; /* unique bus name, NULL = unclaimed */
	sd_bus_track *track;
	struct session *session;
	struct refusal last_refusal;

	bool gone; /* link lost: removal pending */
	sd_event_source *gone_event;
	uint64_t last_telemetry_mono; /* CLOCK_MONOTONIC of the last record */

	struct telemetry_summary tsum;
	struct smp_telemetry last_telemetry;
	bool have_telemetry;
	struct telemetry_summary audit_sum; /* per-second summary for the log */
	uint64_t audit_sum_start;
};

struct session {
	struct manager *manager;
	struct session *next;
	char id[33];
	char *path;
	sd_bus_slot *slot;
	struct device *device; /* NULL once ended or device gone */
	char *owner;	       /* unique bus name that began it */
	char *client;
	char *operator_name;
	char *pigment_lot;
	char *pigment_maker;
	enum zone zone;
	char cartridge_id[SMPP_ID_LEN + 1];
	char cartridge_lot[SMPP_ID_LEN + 1];
	char needle[16];
	int64_t patch_test_time, screening_time;
	uint64_t begin_realtime_us;
	uint64_t begin_monotonic_us;
	uint64_t end_realtime_us;
	uint64_t needle_on_us; /* final value once ended */
	bool active;
	char *end_reason;
};

struct auth_query;
struct verify_job;

struct manager {
	sd_event *event;
	sd_bus *bus;
	char *state_dir;
	char *config_dir;
	char *audit_dir;
	char *audit_key_file; /* where to write a new log's key, or NULL */

	struct policy policy;
	char policy_error[POLICY_ERROR_MAX];

	struct device *devices;
	struct session *sessions;
	struct store *store;
	struct audit_log *audit;
	int audit_error; /* <0: the log cannot be written (H12) */

	struct auth_query *auth_queries;
	struct verify_job *verify_jobs; /* VerifyLog children */
	sd_event_source *watchdog_timer;
	sd_event_source *audit_timer;
	char *sim_sockets[SMPD_SIM_SOCKETS_MAX]; /* --sim-socket, each watched */
	unsigned n_sim_sockets;
	sd_event_source *reconnect_timer;

	struct udev *udev;
	struct udev_monitor *udev_monitor;
	sd_event_source *udev_source;
};

int manager_new(sd_event *e, sd_bus *bus, const char *config_dir, const char *state_dir,
		const char *audit_key_file, struct manager **ret);
struct manager *manager_free(struct manager *m);
int manager_start(struct manager *m);
/* Reload the policy; on error keep the last good one and set err. */
int manager_reload(struct manager *m, char *err, size_t errsz);
void manager_stop_all(struct manager *m, const char *reason);
int manager_attach_socket(struct manager *m, const char *path);
/* (Re)arm the audit timer for the work there is; none when idle without a device. */
void manager_arm_audit_timer(struct manager *m);
/* udev.c: USB discovery and hotplug. */
int manager_udev_start(struct manager *m);
void manager_udev_stop(struct manager *m);

/*
 * H12: fail the log (as a record that cannot be written does) when its
 * filesystem has less room left than the records of a stop need.  Returns
 * 0, or the log's error (negative errno).
 */
int manager_check_audit_space(struct manager *m);

/*
 * Append an audit record.  durable: fdatasync before returning.  On any
 * error the log is marked failed, every running needle stops and no
 * session or start is accepted until restart (H12).
 */
int manager_audit(struct manager *m, bool durable, const char *event,
		  const struct audit_field *fields, size_t n_fields);

/* bus-manager.c, bus-device.c, bus-session.c */
void bus_manager_free_jobs(struct manager *m);
int bus_manager_register(struct manager *m);
int bus_device_register(struct device *d);
int bus_session_register(struct session *s);
/* PropertiesChanged for a NULL-terminated list of property names. */
#define bus_device_emit_changed(d, ...) \
	sd_bus_emit_properties_changed((d)->manager->bus, (d)->path, SMPD_IFACE_DEVICE, __VA_ARGS__)
#define bus_session_emit_changed(s, ...) \
	sd_bus_emit_properties_changed((s)->manager->bus, (s)->path, SMPD_IFACE_SESSION, __VA_ARGS__)

/* polkit.c */
/*
 * 1 authorized; 0 pending (return 1 from the method handler: it is
 * called again with the same message when polkit answers); <0 denied,
 * error set.  Denied when polkit is absent, fails or times out.
 */
int polkit_verify(struct manager *m, sd_bus_message *call, const char *action,
		  sd_bus_message_handler_t handler, void *userdata, sd_bus_error *error);
void polkit_free_all(struct manager *m);
/* Answer and drop pending queries for an object that goes away. */
void polkit_cancel_userdata(struct manager *m, const void *userdata);

/* device.c */
int device_new(struct manager *m, struct backend *b, struct device **ret);
void device_free(struct device *d);
void device_remove(struct device *d, const char *reason);
struct device *device_find_by_path(struct manager *m, const char *path);
const char *device_state_string(const struct device *d);
void device_effective_limits(const struct device *d, struct effective_limits *ret);

int device_claim(struct device *d, const char *sender, sd_bus_error *error);
int device_release(struct device *d, const char *reason);
/*
 * Requests (authorization checked by the caller).  The answer goes to m
 * (NULL: smpd's own request, no answer) when the controller gives it:
 * at once for a refusal, after the device's reply otherwise; the event
 * loop never waits for it.  1, or a negative errno (nothing was done).
 */
int device_set_parameters(struct device *d, const struct smp_params *req, sd_bus_message *m);
int device_start(struct device *d, const char *who, sd_bus_message *m);
int device_stop(struct device *d, const char *who, const char *reason, sd_bus_message *m);
int device_estop(struct device *d, const char *who, sd_bus_message *m);
int device_clear_fault(struct device *d, const char *who, sd_bus_message *m);
/* Shutdown: wait (at most CommandTimeoutMs each) for the commands in flight. */
void device_settle(struct device *d);
/* Stop, latch and report a trip (audit-failed: the log's error). */
void device_trip(struct device *d, enum monitor_trip trip, const char *msg);
/* Carry out the controller's pending actions. */
void device_run(struct device *d);
/* The effective limits may have changed: give them to the controller. */
void device_limits_changed(struct device *d);
void device_heartbeat(struct device *d);
int device_refresh_cartridge(struct device *d);
/*
 * A limit refused q=requested: record it as LastRefusal, announce it and
 * set error to LimitExceeded with "prefix: msg" (prefix may be NULL).
 * Returns the negative errno of the error, for the method handler.
 */
int device_refuse_limit(struct device *d, const struct effective_limits *el, enum param q,
			const struct smp_params *req, const char *prefix, const char *msg,
			sd_bus_error *error);
int device_mark_cartridge(struct device *d, sd_bus_error *error);
int device_append_telemetry(sd_bus_message *m, const struct device *d);
void device_audit_tick(struct device *d);

/* session.c */
/* A refusal of BeginSession as it would answer it (session_check()). */
struct session_refusal {
	const char *error; /* SMPD_ERROR_*: BeginSession's error name */
	bool bad_request;  /* the request is malformed (InvalidArgument of the call) */
	struct safety_refusal_info info; /* smpd's sentence and the details */
};
#define SESSION_REFUSALS_MAX (SAFETY_REFUSALS_MAX + 4)
/*
 * Every refusal BeginSession would give d for req now, in BeginSession's
 * order (the first is the one it would return), at most max; returns how
 * many.  The same rules as session_begin(), which calls the same
 * functions, but no claim is needed, nothing is read from the device
 * (the cartridge is judged as smpd last read it), nothing is opened and
 * nothing recorded (Device.CheckSession, docs/dbus.md).
 */
size_t session_check(struct manager *m, struct device *d, const struct session_request *req,
		     struct session_refusal *out, size_t max);
int session_begin(struct manager *m, struct device *d, const char *owner,
		  const struct session_request *req, const char *pigment_maker,
		  struct session **ret, sd_bus_error *error);
int session_end(struct session *s, const char *reason);
/* EndSession: the session stays open when its end cannot be recorded. */
int session_end_recorded(struct session *s, const char *reason);
int session_change_zone(struct session *s, enum zone z, sd_bus_error *error);
int session_annotate(struct session *s, const char *text, sd_bus_error *error);
struct session *session_find_by_path(struct manager *m, const char *path);
void session_free(struct session *s);

uint64_t now_realtime_us(void);
uint64_t now_monotonic_us(void);
