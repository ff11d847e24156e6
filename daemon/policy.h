/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.h - site safety policy: /etc/smpd/smpd.conf plus the drop-ins
 * /etc/smpd/limits.d/ *.conf (sorted by name), parsed with libinih.
 *
 * Pure: no D-Bus, no device, no logging.  Every value remembers the file
 * and line it came from so that a refusal can say where its limit was set.
 * Across files the most restrictive value wins (a drop-in can tighten a
 * limit, never loosen it); docs/configuration.md is the reference.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_SOURCE_MAX 256
#define POLICY_ERROR_MAX 512
#define POLICY_NEEDLE_MAX 16

enum zone {
	ZONE_HAIRLINE,
	ZONE_TEMPLES,
	ZONE_CROWN,
	ZONE_SCAR,
	_ZONE_MAX,
	_ZONE_INVALID = -1,
};

/*@ assigns \result \from z; */
const char *zone_to_string(enum zone z);
enum zone zone_from_string(const char *s);

/* The parameters the safety engine limits (units as on the wire). */
enum param {
	PARAM_VOLTAGE, /* mV */
	PARAM_CURRENT, /* mA (current limit) */
	PARAM_RATE,    /* Hz x 100 */
	PARAM_DEPTH,   /* um */
	_PARAM_MAX,
};

/*@ assigns \result \from p; */
const char *param_to_string(enum param p); /* "voltage", ... */
/*@ assigns \result \from p; */
const char *param_unit(enum param p); /* "mV", ... */

/* One limit value and where it was set ("file:line"). */
struct limit_value {
	bool set;
	uint32_t value;
	char source[POLICY_SOURCE_MAX];
};

/* Minimum and maximum per parameter; unset means "no limit from here". */
struct limit_set {
	struct limit_value min[_PARAM_MAX];
	struct limit_value max[_PARAM_MAX];
};

struct needle_limits {
	char name[16]; /* "1RL", "3RL", ... as smp_needle_config_str() */
	struct limit_set limits;
};

/* A scalar setting with its source. */
struct setting {
	uint32_t value;
	char source[POLICY_SOURCE_MAX];
};

struct policy {
	struct limit_set site;				/* [Limits] */
	struct limit_set zone[_ZONE_MAX];		/* [Zone hairline] ... */
	struct needle_limits needle[POLICY_NEEDLE_MAX]; /* [Needle 3RL] */
	size_t n_needle;

	/* [Session] */
	struct setting max_session_s;	      /* maximum session duration */
	struct setting max_needle_on_s;	      /* needle-on time per session */
	struct setting max_continuous_run_s;  /* one uninterrupted run */
	struct setting warning_before_end_s;  /* warning before the session limit */
	struct setting healing_interval_days; /* >= 5 */
	bool require_patch_test;
	char require_patch_test_source[POLICY_SOURCE_MAX];
	struct setting patch_test_min_age_hours; /* >= 24 */

	/* [Monitor] */
	struct setting brownout_margin_mv;
	struct setting brownout_time_ms;
	struct setting max_temperature_cdeg; /* daemon trip, below the device's */
	struct setting jam_time_ms;

	/* [Daemon] */
	struct setting telemetry_hz;	   /* Telemetry signal rate, 1..20 */
	struct setting lease_ms;	   /* device lease, 20..500 */
	struct setting renew_ms;	   /* renewal period, < lease / 2 */
	struct setting client_timeout_ms;  /* claimant's Heartbeat deadline, 50..1000 */
	struct setting polkit_timeout_ms;  /* 100..120000 */
	struct setting command_timeout_ms; /* device reply wait, 20..5000 */

	/* [Audit]: read when the log is opened (at start) */
	struct setting audit_retention_days; /* >= 730 (DOMAIN.md: 2-5 years) */
	struct setting audit_seal_records;   /* seal after this many records */
	struct setting audit_seal_s;	     /* ... or this many seconds */

	/* SHA-256 over every file read, in order (for the audit log). */
	char digest[65];
	unsigned n_files;
};

/* The built-in fallbacks when a key is absent (source "built-in default"). */
void policy_init_defaults(struct policy *p);

/*
 * Load config_dir/smpd.conf (which must exist) and then every regular
 * config_dir/limits.d/ *.conf in strcmp() order.  Returns 0 and fills *ret,
 * or a negative errno with err (POLICY_ERROR_MAX bytes) set to one sentence
 * naming file and line ("/etc/smpd/smpd.conf:12: MaxDepthUm=2500 is above
 * the protocol maximum 2000").  *ret is untouched on failure.
 */
int policy_load(const char *config_dir, struct policy *ret, char *err, size_t errsz);

/* Same for one file on top of *p (used by policy_load and the tests). */
int policy_load_file(struct policy *p, const char *path, char *err, size_t errsz);

/* Limits for a needle configuration, NULL if the policy has none. */
/*@ requires \valid_read(p);
    assigns \result \from p, name;
    ensures \result == \null || \exists integer i; 0 <= i < p->n_needle &&
	i < POLICY_NEEDLE_MAX && \result == &p->needle[i];
 */
const struct needle_limits *policy_find_needle(const struct policy *p, const char *name);
