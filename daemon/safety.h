/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * safety.h - the safety engine: effective limits, request checks, session
 * interlocks and runtime monitors.
 *
 * Pure logic over plain structs: no D-Bus, no I/O, no clock reads (every
 * time is passed in), so each rule is unit-tested on its own
 * (tests/daemon/test-safety.c).  Layers are independent and the most
 * restrictive limit wins: the device's hard limits (GET_INFO), the site
 * policy ([Limits]), the zone of the session, the needle configuration of
 * the cartridge; the request is checked against all of them.
 */
#pragma once

#include <errno.h> /* ERANGE, EINVAL: safety_check_params()'s contract */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "smp-frame.h"

#define SAFETY_MSG_MAX 512

enum limit_layer {
	LAYER_PROTOCOL, /* protocol-wide bound, smpusb_proto.h */
	LAYER_DEVICE,	/* the device's hard limit */
	LAYER_SITE,	/* [Limits] */
	LAYER_ZONE,	/* [Zone ...] of the session's zone */
	LAYER_NEEDLE,	/* [Needle ...] of the cartridge */
};

/* One effective bound and who imposes it. */
struct effective_bound {
	uint32_t value;
	enum limit_layer layer;
	char label[48];			/* "device", "site", "temples", "3RL needle" */
	char source[POLICY_SOURCE_MAX]; /* "file:line" or the device serial */
};

struct effective_limits {
	struct effective_bound min[_PARAM_MAX];
	struct effective_bound max[_PARAM_MAX];
};

/*
 * Combine protocol bounds, the device's limits, the site policy, the zone
 * (or _ZONE_INVALID when no session is open) and the needle configuration
 * (NULL or "" when unknown).
 */
/* The protocol layer alone (SMPP_*_MIN/MAX of the wire protocol). */
void safety_protocol_limits(struct effective_limits *ret);
/*
 * A SetParameters value too large for the protocol's 16-bit field
 * (> 65535): the protocol's maximum for q as the refusing bound, and the
 * LimitExceeded sentence.
 */
void safety_refuse_beyond_protocol(enum param q, uint32_t requested,
				   struct effective_bound *ret_bound, char *msg, size_t msgsz);
void safety_effective_limits(const struct policy *p, const struct smp_limits *dev,
			     const char *dev_serial, enum zone zone, const char *needle,
			     struct effective_limits *ret);

/* "the temples limit 1000 um set in /etc/smpd/smpd.conf:12" */
void safety_describe_bound(const struct effective_bound *b, enum param q, char *buf, size_t bufsz);

/*
 * Check a complete set of setpoints.  Returns 0, -ERANGE (a limit is
 * exceeded: msg names parameter, value, limit and source, *ret_param is
 * set) or -EINVAL (not on the protocol's step, or current 0).
 */
/*
 * Its ACSL contract (proofs/README.md): proved by WP on safety.c, and
 * what WP assumes of the call wherever the controller calls it.
 */
/*@ predicate within(struct effective_limits *el, integer q, integer v) =
	el->min[q].value <= v <= el->max[q].value;
    predicate params_allowed(struct effective_limits *el, struct smp_params *req) =
	within(el, PARAM_VOLTAGE, req->voltage_mv) && within(el, PARAM_CURRENT, req->current_ma) &&
	within(el, PARAM_RATE, req->rate_chz) && within(el, PARAM_DEPTH, req->depth_um) &&
	req->voltage_mv % SMPP_VOLTAGE_STEP_MV == 0 && req->depth_um % SMPP_DEPTH_STEP_UM == 0;
 */
/*@ requires \valid_read(el) && \valid_read(req);
    requires ret_param == \null || \valid(ret_param);
    requires \separated(ret_param, el, req) && \separated(msg + (0 .. msgsz - 1), el, req, ret_param);
    assigns *ret_param, msg[0 .. msgsz - 1];
    ensures \result == 0 || \result == -ERANGE || \result == -EINVAL;
    ensures \result == 0 ==> params_allowed(el, req);
 */
int safety_check_params(const struct effective_limits *el, const struct smp_params *req,
			enum param *ret_param, char *msg, size_t msgsz);

/* ---- session interlocks ---- */

enum safety_refusal {
	SAFETY_OK,
	SAFETY_INVALID, /* malformed metadata */
	SAFETY_NO_PIGMENT_LOT,
	SAFETY_NO_CARTRIDGE,
	SAFETY_CARTRIDGE_USED,
	SAFETY_CARTRIDGE_EXPIRED,
	SAFETY_HEALING_INTERVAL,
	SAFETY_PATCH_TEST,
};

struct session_request {
	const char *client; /* pseudonym */
	const char *operator_name;
	enum zone zone;
	const char *pigment_lot;
	int64_t patch_test_time;     /* unix seconds, 0 = none given */
	int64_t screening_time;	     /* unix seconds, 0 = none given */
	const char *override_reason; /* non-NULL: healing interval override requested */
};

/* One refusal of a session request (safety_session_refusals()). */
struct safety_refusal_info {
	enum safety_refusal kind;
	char msg[SAFETY_MSG_MAX];
	/* SAFETY_HEALING_INTERVAL: the client's last session and the first
	 * time the interval allows; SAFETY_PATCH_TEST with a patch test given:
	 * the time it is old enough (earliest).  Unix seconds, 0 = none. */
	int64_t last_session, earliest;
	bool overridable; /* an OverrideReason (with its authorization) lifts it */
};

/* As many as safety_session_refusals() can report at once. */
#define SAFETY_REFUSALS_MAX 8

/*
 * Decide whether a session may open: every refusal that applies, in the
 * order BeginSession checks them (the first is the one it returns), at
 * most max; returns how many (0: the session may open).  cart is the
 * cartridge as read from the device; cartridge_seen_before says the
 * daemon's state recorded its ID in an earlier session; last_session is
 * the unix time of the client's last session (0 = none).  A malformed
 * field ends the list with SAFETY_INVALID (only NoPigmentLot may come
 * before it): the request is judged no further.  An override_reason
 * lifts only the healing interval, and only when it is not empty (the
 * caller checks the override authorization); *ret_overridden (may be
 * NULL) says whether it did and nothing else refuses the session (found,
 * whether or not max left room to report it), so that the override is
 * recorded when the session opens.
 */
size_t safety_session_refusals(const struct policy *p, const struct session_request *req,
			       const struct smp_cartridge *cart, bool cartridge_seen_before,
			       int64_t last_session, int64_t now, bool *ret_overridden,
			       struct safety_refusal_info *out, size_t max);

/* The first of safety_session_refusals(), with msg set; SAFETY_OK when none. */
enum safety_refusal safety_check_session(const struct policy *p, const struct session_request *req,
					 const struct smp_cartridge *cart,
					 bool cartridge_seen_before, int64_t last_session,
					 int64_t now, bool *ret_overridden, char *msg, size_t msgsz);

/* The rules as error sentences and docs/dbus.md state them. */
#define SAFETY_TOKEN_RULE \
	"the rule: 1-64 characters of printable ASCII (0x21-0x7e) other than '\"', '=' and '\\'"
#define SAFETY_TEXT_RULE \
	"the rule: 1-1024 bytes of UTF-8 without control characters (U+0000-U+001F, U+007F-U+009F)"
/* PatchTestTime and ScreeningTime: signed Unix seconds from 1900-01-01 on. */
#define SAFETY_DATE_MIN (-2208988800LL)

/* A pseudonym, operator, lot, serial or cartridge id: 1-64 printable ASCII
 * other than space, '"', '=' and '\\' (they would need quoting in the
 * journal's and the log's key=value renderings). */
bool safety_token_valid(const char *s);
/* Free text (annotations, reasons, manufacturer): 1-1024 bytes of valid
 * UTF-8 without control characters. */
bool safety_text_valid(const char *s);
/* As the above; when invalid, why (if not NULL) says what and where, e.g.
 * "has '\"' (0x22) at position 5, which is not allowed". */
bool safety_token_check(const char *s, char *why, size_t whysz);
bool safety_text_check(const char *s, char *why, size_t whysz);

/* ---- runtime monitors ---- */

enum monitor_trip {
	MONITOR_OK,
	MONITOR_OVERCURRENT,
	MONITOR_BROWNOUT,
	MONITOR_OVERTEMP,
	MONITOR_JAM,
	MONITOR_CARTRIDGE_REMOVED,
	MONITOR_MAX_CONTINUOUS_RUN,
	MONITOR_NEEDLE_ON_TIME,
	MONITOR_DEVICE_FAULT,	     /* the device reported a fault itself */
	MONITOR_SESSION_TIME,	     /* maximum session duration reached (daemon timer) */
	MONITOR_TELEMETRY_LOST,	     /* no telemetry for a lease period while running */
	MONITOR_AUDIT_FAILED,	     /* the audit log cannot be written (H12) */
	MONITOR_DEVICE_REFUSED,	     /* the device refused a lease renewal */
	MONITOR_CLIENT_UNRESPONSIVE, /* no Heartbeat from the claimant in time */
	_MONITOR_MAX,
};

/* "overcurrent", "brownout", ... (the Fault signal's first argument) */
const char *monitor_trip_to_string(enum monitor_trip t);

/*
 * The journal MESSAGE_ID of smpd's message kind:name ("fault", a trip's
 * name; "policy", "reloaded"): the first 16 bytes of
 * SHA-256("smpd-message-id-v1:" kind ":" name) in hex, as listed in
 * daemon/data/smpd.catalog.  0, or -EINVAL.
 */
int smpd_message_id(const char *kind, const char *name, char ret[33]);

struct monitor {
	bool have_prev;
	uint64_t prev_us; /* device timestamp of the last record */
	bool brownout;
	uint64_t brownout_since_us;
	bool jam;
	uint64_t jam_since_us;
	bool running;
	uint64_t run_since_us;
	uint64_t needle_on_us; /* accumulated over the session */
};

void monitor_reset_session(struct monitor *m);

/*
 * Feed one telemetry record.  setpoints are the applied values (all zero
 * when none), current_max the effective current limit, session_open
 * whether a session is open.  Returns MONITOR_OK or the first trip with
 * msg set.
 */
enum monitor_trip monitor_feed(struct monitor *m, const struct policy *p,
			       const struct smp_params *setpoints, uint32_t current_max,
			       bool session_open, const struct smp_telemetry *t, char *msg,
			       size_t msgsz);
