/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * smpctl: the administrator's tool for smpd, built only on libsmp.
 * Exit codes (docs/man/smpctl.1): see enum below.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <spawn.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libsmp.h"
#include "bundle.h"
#include "report.h"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	       /* any other failure */
	EXIT_USAGE = 2,	       /* bad command line or script line */
	EXIT_LOG_TAMPERED = 3, /* log verify: as smp-audit */
	EXIT_LOG_TRUNCATED = 4,
	EXIT_LOG_UNVERIFIABLE = 5,
	EXIT_LOG_GAP = 6,      /* log verify --journal: records missing at the collector */
	EXIT_DENIED = 10,      /* not authorized */
	EXIT_REFUSED = 11,     /* refused by the safety policy: limit, interlock */
	EXIT_UNAVAILABLE = 12, /* smpd not running, no such device, connection lost */
	EXIT_FAULT = 13,       /* a latched fault or emergency stop is in the way */
	EXIT_BUSY = 14,	       /* claimed by another client, or not claimed by us */
	EXIT_EXPECTED = 15,    /* script: a line marked '!' succeeded */
};

static const char *arg_bus_address;
static bool arg_user;
static const char *arg_device;
static bool arg_json;
static const char *arg_log_dir;
static bool arg_script; /* inside `smpctl run` */
static volatile sig_atomic_t interrupted;

static smp_client *client;

static int run_command(int argc, char **argv);

static void on_signal(int sig)
{
	interrupted = 1;
}

static int exit_for_errno(int r)
{
	switch (-r) {
	case EACCES:
		return EXIT_DENIED;
	case ERANGE:
	case ENOMEDIUM:
	case EMEDIUMTYPE:
	case EKEYEXPIRED:
	case ETIME:
	case ETIMEDOUT:
	case ENOLCK:
	case EREMOTEIO:
	case ENOENT:
	case ENODATA:
	case EALREADY:
	case ESTALE:
		return EXIT_REFUSED;
	case ENOTCONN:
	case ENODEV:
		return EXIT_UNAVAILABLE;
	case ENOTRECOVERABLE:
	case EAGAIN:
		return EXIT_FAULT;
	case EBUSY:
	case EPERM:
		return EXIT_BUSY;
	case EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("smpctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(arg_script ? "\n" : "\nTry 'smpctl --help'.\n", stderr);
	return EXIT_USAGE;
}

/* ---- units ------------------------------------------------------------------------ */

static const char *const unit_name[] = { "V", "A", "Hz", "mm" };

/* voltage mV -> "8.00 V", current mA -> "1.00 A", rate cHz -> "120.00 Hz", depth um -> "1.40 mm" */
static const char *format_param(enum smp_param p, uint32_t v, char *buf, size_t n)
{
	uint32_t div = p == SMP_PARAM_STROKE_RATE ? 100 : 1000;

	snprintf(buf, n, "%" PRIu32 ".%02" PRIu32 " %s", v / div, (v % div) / (div / 100),
		 unit_name[p]);
	return buf;
}

/* "8V", "8.2 V", "8200mV", "8200" (mV) ... -> base unit of the parameter */
static int parse_param_value(enum smp_param p, const char *s, uint32_t *ret)
{
	static const struct {
		const char *suffix;
		double factor;
	} units[4][3] = {
		{ { "mV", 1 }, { "V", 1000 }, { "", 1 } },
		{ { "mA", 1 }, { "A", 1000 }, { "", 1 } },
		{ { "cHz", 1 }, { "Hz", 100 }, { "", 1 } },
		{ { "um", 1 }, { "mm", 1000 }, { "", 1 } },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (int i = 0; i < 3; i++)
		if (strcmp(end, units[p][i].suffix) == 0) {
			double x = v * units[p][i].factor;

			if (x > (double)UINT32_MAX - 1)
				return -ERANGE;
			*ret = (uint32_t)(x + 0.5);
			return 0;
		}
	return -EINVAL;
}

static int parse_param_name(const char *s, enum smp_param *ret)
{
	static const char *const names[][3] = {
		{ "voltage", "v", NULL },
		{ "current", "i", NULL },
		{ "rate", "stroke-rate", "hz" },
		{ "depth", "d", NULL },
	};

	for (int p = 0; p < 4; p++)
		for (int i = 0; i < 3; i++)
			if (names[p][i] && strcasecmp(s, names[p][i]) == 0) {
				*ret = (enum smp_param)p;
				return 0;
			}
	return -EINVAL;
}

static const char *format_time_usec(uint64_t usec, char *buf, size_t n)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!usec)
		return "-";
	strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
	return buf;
}

/* "1700000000", "2026-11-19", "-48h", "-2d" -> Unix seconds */
static int parse_time(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	char *end;
	long long v;

	if (s[0] == '-' && s[1]) {
		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (errno || end == s + 1 || (strcmp(end, "h") && strcmp(end, "d")))
			return -EINVAL;
		*ret = (int64_t)time(NULL) - v * (*end == 'h' ? 3600 : 86400);
		return 0;
	}
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end && !*end) {
		*ret = (int64_t)timegm(&tm);
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* ---- the daemon's errors as the sentence a user needs -------------------------------- */

static void describe_limit(enum smp_param p, uint32_t limit, const char *layer, const char *source,
			   const char *serial, char *buf, size_t n)
{
	char v[32];

	format_param(p, limit, v, sizeof(v));
	if (strcmp(layer, "protocol") == 0)
		snprintf(buf, n, "the protocol limit %s", v);
	else if (strcmp(layer, "device") == 0)
		snprintf(buf, n, "the hard limit %s of device %s", v, source[0] ? source : serial);
	else
		snprintf(buf, n, "the %s limit %s set in %s", layer, v, source);
}

static int device_failed(smp_device *d, int r, const char *what)
{
	enum smp_param p;
	enum smp_bound b;
	uint32_t req, lim;
	const char *layer, *source;

	if (r == -ERANGE && smp_device_get_error_limit(d, &p, &b, &req, &lim, &layer, &source) >= 0) {
		char v[32], desc[512];

		describe_limit(p, lim, layer, source, smp_device_get_serial(d), desc, sizeof(desc));
		fprintf(stderr, "smpctl: %s: %s %s %s %s\n", what, smp_param_to_string(p),
			format_param(p, req, v, sizeof(v)),
			b == SMP_BOUND_MAX ? "exceeds" : "is below", desc);
	} else {
		const char *msg = smp_device_get_error_message(d);

		fprintf(stderr, "smpctl: %s: %s\n", what, msg ? msg : strerror(-r));
	}
	return exit_for_errno(r);
}

static int session_failed(smp_session *s, int r, const char *what)
{
	const char *msg = smp_session_get_error_message(s);

	fprintf(stderr, "smpctl: %s: %s\n", what, msg ? msg : strerror(-r));
	return exit_for_errno(r);
}

static int client_failed(int r, const char *what)
{
	const char *msg = client ? smp_client_get_error_message(client) : NULL;

	fprintf(stderr, "smpctl: %s: %s\n", what, msg ? msg : strerror(-r));
	return exit_for_errno(r);
}

/* ---- connection ------------------------------------------------------------------- */

static void print_event(smp_client *c, const smp_event *ev, void *userdata);

static int connect_client(void)
{
	int r;

	if (client)
		return 0;
	if (arg_bus_address)
		r = smp_client_new_address(arg_bus_address, &client);
	else if (arg_user)
		r = smp_client_new_user(&client);
	else
		r = smp_client_new(&client);
	if (r < 0) {
		fprintf(stderr, "smpctl: cannot connect to the bus: %s\n", strerror(-r));
		return EXIT_UNAVAILABLE;
	}
	smp_client_set_event_handler(client, print_event, NULL);
	return 0;
}

static int need_daemon(void)
{
	int r = connect_client();

	if (r)
		return r;
	if (smp_client_is_daemon_running(client) <= 0) {
		fprintf(stderr, "smpctl: smpd is not running\n");
		return EXIT_UNAVAILABLE;
	}
	return 0;
}

static int get_device(smp_device **ret)
{
	smp_device *d;
	int r = need_daemon();

	if (r)
		return r;
	(void)smp_client_dispatch(client);
	d = smp_client_find_device(client, arg_device);
	if (!d) {
		if (arg_device)
			fprintf(stderr, "smpctl: no device with serial %s\n", arg_device);
		else if (smp_client_get_n_devices(client) == 0)
			fprintf(stderr, "smpctl: no device attached\n");
		else {
			fprintf(stderr,
				"smpctl: %zu devices attached: choose one with --device=SERIAL\n",
				smp_client_get_n_devices(client));
			return EXIT_USAGE;
		}
		return EXIT_UNAVAILABLE;
	}
	*ret = d;
	return 0;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* ---- events while waiting (watch, script sleep) ---------------------------------------- */

static bool watching;
static int gauge_lines;

static void print_event(smp_client *c, const smp_event *ev, void *userdata)
{
	smp_device *d = smp_event_get_device(ev);
	smp_session *s = smp_event_get_session(ev);
	const char *serial = d ? smp_device_get_serial(d) : "";

	switch (smp_event_get_type(ev)) {
	case SMP_EVENT_FAULT:
		printf("%sfault on %s: %s: %s\n", watching && gauge_lines ? "\n" : "", serial,
		       smp_event_get_kind(ev), smp_event_get_message(ev));
		gauge_lines = 0;
		break;
	case SMP_EVENT_SESSION_WARNING:
		printf("session %s: warning %s, %" PRIu32 " s left\n", smp_session_get_id(s),
		       smp_event_get_kind(ev), smp_event_get_seconds_left(ev));
		gauge_lines = 0;
		break;
	case SMP_EVENT_SESSION_ENDED:
		if (arg_script || watching) {
			printf("session %s ended: %s\n", smp_session_get_id(s),
			       smp_event_get_kind(ev));
			gauge_lines = 0;
		}
		break;
	case SMP_EVENT_DEVICE_REMOVED:
		if (arg_script || watching) {
			printf("device %s removed\n", serial);
			gauge_lines = 0;
		}
		break;
	case SMP_EVENT_DAEMON_LOST:
		fprintf(stderr, "smpctl: smpd went away; every claim is lost\n");
		gauge_lines = 0;
		break;
	case SMP_EVENT_DAEMON_APPEARED:
		if (arg_script || watching)
			printf("smpd is back\n");
		break;
	case SMP_EVENT_DISCONNECTED:
		fprintf(stderr, "smpctl: the connection to the bus is lost\n");
		break;
	default:
		break;
	}
	fflush(stdout);
}

static int wait_events(double seconds)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		double left;
		int r;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = seconds - ((double)(now.tv_sec - start.tv_sec) +
				  (double)(now.tv_nsec - start.tv_nsec) / 1e9);
		if (left <= 0 || interrupted)
			return 0;
		r = smp_client_wait(client, (uint64_t)((left < 0.1 ? left : 0.1) * 1e6));
		if (r < 0)
			return r;
	}
}

/* ---- read commands ------------------------------------------------------------------- */

static json_object *device_json(smp_device *d)
{
	json_object *o = json_object_new_object(), *sp = json_object_new_object();
	smp_session *s = smp_device_get_session(d);
	uint32_t v, dia, exp;

	json_object_object_add(o, "serial", json_object_new_string(smp_device_get_serial(d)));
	json_object_object_add(o, "model", json_object_new_string(smp_device_get_model(d)));
	json_object_object_add(o, "firmware", json_object_new_string(smp_device_get_firmware(d)));
	json_object_object_add(o, "backend", json_object_new_string(smp_device_get_backend(d)));
	json_object_object_add(o, "state",
			       json_object_new_string(
				       smp_device_state_to_string(smp_device_get_state(d))));
	json_object_object_add(o, "fault", json_object_new_string(smp_device_get_fault_kind(d)));
	json_object_object_add(o, "fault_message",
			       json_object_new_string(smp_device_get_fault_message(d)));
	json_object_object_add(o, "device_faults",
			       json_object_new_string(smp_device_get_device_faults(d)));
	json_object_object_add(o, "claimed", json_object_new_boolean(smp_device_is_claimed(d) > 0));
	json_object_object_add(o, "session",
			       s ? json_object_new_string(smp_session_get_id(s)) : NULL);
	if (smp_device_get_setpoint(d, SMP_PARAM_VOLTAGE, &v) >= 0)
		json_object_object_add(sp, "voltage_mv", json_object_new_int64(v));
	if (smp_device_get_setpoint(d, SMP_PARAM_CURRENT, &v) >= 0)
		json_object_object_add(sp, "current_ma", json_object_new_int64(v));
	if (smp_device_get_setpoint(d, SMP_PARAM_STROKE_RATE, &v) >= 0)
		json_object_object_add(sp, "stroke_rate_chz", json_object_new_int64(v));
	if (smp_device_get_setpoint(d, SMP_PARAM_DEPTH, &v) >= 0)
		json_object_object_add(sp, "depth_um", json_object_new_int64(v));
	json_object_object_add(o, "setpoints", sp);
	if (smp_device_has_cartridge(d) > 0) {
		json_object *c = json_object_new_object();

		json_object_object_add(c, "id",
				       json_object_new_string(smp_device_get_cartridge_id(d)));
		json_object_object_add(c, "lot",
				       json_object_new_string(smp_device_get_cartridge_lot(d)));
		json_object_object_add(c, "needle",
				       json_object_new_string(smp_device_get_cartridge_needle(d)));
		if (smp_device_get_cartridge_info(d, &dia, &exp) >= 0) {
			json_object_object_add(c, "diameter_um", json_object_new_int64(dia));
			json_object_object_add(c, "expiry_day", json_object_new_int64(exp));
		}
		json_object_object_add(c, "used",
				       json_object_new_boolean(smp_device_is_cartridge_used(d) > 0));
		json_object_object_add(c, "expired",
				       json_object_new_boolean(smp_device_is_cartridge_expired(d) >
							       0));
		json_object_object_add(o, "cartridge", c);
	} else
		json_object_object_add(o, "cartridge", NULL);
	return o;
}

static void print_device(smp_device *d)
{
	smp_session *s = smp_device_get_session(d);
	uint32_t v;
	char buf[32];

	printf("%s  %s firmware %s via %s\n", smp_device_get_serial(d), smp_device_get_model(d),
	       smp_device_get_firmware(d), smp_device_get_backend(d));
	printf("  state:      %s", smp_device_state_to_string(smp_device_get_state(d)));
	if (smp_device_get_fault_kind(d)[0])
		printf(" (%s: %s)", smp_device_get_fault_kind(d), smp_device_get_fault_message(d));
	printf("\n  claimed:    %s\n",
	       smp_device_is_claimed(d) > 0 ?
		       (smp_device_is_claimed_by_me(d) > 0 ? "yes, by this smpctl" : "yes") :
		       "no");
	printf("  session:    %s\n", s ? smp_session_get_id(s) : "none");
	if (smp_device_has_cartridge(d) > 0)
		printf("  cartridge:  %s lot %s needle %s%s%s\n", smp_device_get_cartridge_id(d),
		       smp_device_get_cartridge_lot(d), smp_device_get_cartridge_needle(d),
		       smp_device_is_cartridge_used(d) > 0 ? " (used)" : "",
		       smp_device_is_cartridge_expired(d) > 0 ? " (expired)" : "");
	else
		printf("  cartridge:  none\n");
	printf("  setpoints: ");
	for (int p = 0; p < 4; p++)
		if (smp_device_get_setpoint(d, (enum smp_param)p, &v) >= 0)
			printf(" %s %s", smp_param_to_string((enum smp_param)p),
			       format_param((enum smp_param)p, v, buf, sizeof(buf)));
		else if (p == 0)
			printf(" none");
	printf("\n");
}

static int cmd_status(int argc, char **argv)
{
	uint32_t version = 0;
	char *digest = NULL;
	int audit, r;

	r = connect_client();
	if (r)
		return r;
	if (smp_client_is_daemon_running(client) <= 0) {
		if (arg_json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "running", json_object_new_boolean(0));
			print_json(o);
		} else
			printf("smpd: not running\n");
		return EXIT_UNAVAILABLE;
	}
	r = smp_client_get_api_version(client, &version);
	if (r < 0)
		return client_failed(r, "status");
	r = smp_client_get_policy_digest(client, &digest);
	if (r < 0)
		return client_failed(r, "status");
	audit = smp_client_is_audit_available(client);
	if (audit < 0) {
		free(digest);
		return client_failed(audit, "status");
	}
	if (arg_json) {
		json_object *o = json_object_new_object(), *a = json_object_new_array();

		json_object_object_add(o, "running", json_object_new_boolean(1));
		json_object_object_add(o, "api_version", json_object_new_int64(version));
		json_object_object_add(o, "policy_digest", json_object_new_string(digest));
		json_object_object_add(o, "audit_available", json_object_new_boolean(audit));
		for (size_t i = 0; i < smp_client_get_n_devices(client); i++)
			json_object_array_add(a, device_json(smp_client_get_device(client, i)));
		json_object_object_add(o, "devices", a);
		print_json(o);
	} else {
		printf("smpd:       running, API version %" PRIu32 "\n", version);
		printf("policy:     %s\n", digest);
		printf("audit log:  %s\n",
		       audit ? "writable" :
			       "CANNOT BE WRITTEN: every needle is stopped until smpd restarts");
		printf("devices:    %zu\n", smp_client_get_n_devices(client));
		for (size_t i = 0; i < smp_client_get_n_devices(client); i++) {
			smp_device *d = smp_client_get_device(client, i);

			printf("  %s %s%s\n", smp_device_get_serial(d),
			       smp_device_state_to_string(smp_device_get_state(d)),
			       smp_device_is_claimed(d) > 0 ? ", claimed" : "");
		}
	}
	free(digest);
	return audit ? EXIT_OK : EXIT_FAULT;
}

static int cmd_devices(int argc, char **argv)
{
	json_object *a = NULL;
	int r = need_daemon();

	if (r)
		return r;
	if (arg_json)
		a = json_object_new_array();
	for (size_t i = 0; i < smp_client_get_n_devices(client); i++) {
		smp_device *d = smp_client_get_device(client, i);

		if (a)
			json_object_array_add(a, device_json(d));
		else
			print_device(d);
	}
	if (a)
		print_json(a);
	else if (smp_client_get_n_devices(client) == 0)
		printf("no device attached\n");
	return EXIT_OK;
}

static int cmd_limits(int argc, char **argv)
{
	json_object *o = NULL;
	smp_device *d;
	int r;

	if (argc < 2 || strcmp(argv[1], "show") != 0)
		return usage_error("usage: limits show");
	r = get_device(&d);
	if (r)
		return r;
	r = smp_device_refresh(d);
	if (r < 0)
		return device_failed(d, r, "limits");
	if (arg_json)
		o = json_object_new_object();
	else
		printf("%-12s %-10s %-10s %-12s %s\n", "PARAMETER", "MIN", "MAX", "LAYER", "SOURCE");
	for (int p = 0; p < 4; p++) {
		uint32_t min, max;
		const char *lmin, *smin, *lmax, *smax;
		char b1[32], b2[32];

		r = smp_device_get_limit(d, (enum smp_param)p, SMP_BOUND_MIN, &min, &lmin, &smin);
		if (r >= 0)
			r = smp_device_get_limit(d, (enum smp_param)p, SMP_BOUND_MAX, &max, &lmax,
						 &smax);
		if (r < 0) {
			json_object_put(o);
			fprintf(stderr, "smpctl: smpd reported no limits\n");
			return EXIT_FAIL;
		}
		if (o) {
			json_object *l = json_object_new_object();

			json_object_object_add(l, "min", json_object_new_int64(min));
			json_object_object_add(l, "max", json_object_new_int64(max));
			json_object_object_add(l, "min_layer", json_object_new_string(lmin));
			json_object_object_add(l, "min_source", json_object_new_string(smin));
			json_object_object_add(l, "max_layer", json_object_new_string(lmax));
			json_object_object_add(l, "max_source", json_object_new_string(smax));
			json_object_object_add(l, "unit",
					       json_object_new_string((const char *[]){
						       "mV", "mA", "cHz", "um" }[p]));
			json_object_object_add(o, smp_param_to_string((enum smp_param)p), l);
		} else
			printf("%-12s %-10s %-10s %-12s %s\n", smp_param_to_string((enum smp_param)p),
			       format_param((enum smp_param)p, min, b1, sizeof(b1)),
			       format_param((enum smp_param)p, max, b2, sizeof(b2)), lmax, smax);
	}
	if (o)
		print_json(o);
	return EXIT_OK;
}

/* ---- watch ----------------------------------------------------------------------------- */

static void gauge(const char *name, int64_t value, int64_t max, const char *text, bool tty)
{
	char bar[33];
	int n = 0;

	if (max > 0 && value > 0)
		n = (int)(value * 32 / max);
	if (n > 32)
		n = 32;
	memset(bar, '#', (size_t)n);
	memset(bar + n, '-', (size_t)(32 - n));
	bar[32] = 0;
	printf("%s%-12s %12s [%s]\n", tty ? "\033[2K" : "", name, text, bar);
}

static void print_gauges(smp_device *d, bool tty)
{
	int64_t v[16] = { 0 };
	uint32_t max[4] = { 0 };
	char buf[32];

	for (int i = 0; i < 16; i++)
		(void)smp_device_get_telemetry(d, (enum smp_telemetry)i, &v[i]);
	for (int p = 0; p < 4; p++)
		(void)smp_device_get_limit(d, (enum smp_param)p, SMP_BOUND_MAX, &max[p], NULL, NULL);
	if (arg_json) {
		json_object *o = json_object_new_object();
		static const char *const keys[16] = {
			"samples",
			"dropped",
			"voltage_mv",
			"voltage_min_mv",
			"voltage_max_mv",
			"current_ma",
			"current_min_ma",
			"current_max_ma",
			"stroke_rate_chz",
			"depth_um",
			"lease_left_ms",
			"device_faults",
			"temperature_cdegc",
			"temperature_max_cdegc",
			"pedal",
			"cartridge_present",
		};

		json_object_object_add(o, "serial", json_object_new_string(smp_device_get_serial(d)));
		json_object_object_add(o, "state",
				       json_object_new_string(
					       smp_device_state_to_string(smp_device_get_state(d))));
		for (int i = 0; i < 16; i++)
			json_object_object_add(o, keys[i], json_object_new_int64(v[i]));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		fflush(stdout);
		return;
	}
	if (tty && gauge_lines)
		printf("\033[%dA", gauge_lines);
	if (!tty)
		printf("--\n");
	printf("%s%s %s  pedal %s  lease %" PRId64 " ms  samples %" PRId64 " dropped %" PRId64 "\n",
	       tty ? "\033[2K" : "", smp_device_get_serial(d),
	       smp_device_state_to_string(smp_device_get_state(d)),
	       v[SMP_TELEMETRY_PEDAL] ? "down" : "up", v[SMP_TELEMETRY_LEASE_LEFT_MS],
	       v[SMP_TELEMETRY_SAMPLES], v[SMP_TELEMETRY_DROPPED]);
	gauge("voltage", v[SMP_TELEMETRY_VOLTAGE_MV], max[0],
	      format_param(SMP_PARAM_VOLTAGE, (uint32_t)v[SMP_TELEMETRY_VOLTAGE_MV], buf, sizeof(buf)),
	      tty);
	gauge("current", v[SMP_TELEMETRY_CURRENT_MA], max[1],
	      format_param(SMP_PARAM_CURRENT, (uint32_t)v[SMP_TELEMETRY_CURRENT_MA], buf, sizeof(buf)),
	      tty);
	gauge("stroke rate", v[SMP_TELEMETRY_STROKE_RATE_CHZ], max[2],
	      format_param(SMP_PARAM_STROKE_RATE, (uint32_t)v[SMP_TELEMETRY_STROKE_RATE_CHZ], buf,
			   sizeof(buf)),
	      tty);
	gauge("depth", v[SMP_TELEMETRY_DEPTH_UM], max[3],
	      format_param(SMP_PARAM_DEPTH, (uint32_t)v[SMP_TELEMETRY_DEPTH_UM], buf, sizeof(buf)),
	      tty);
	snprintf(buf, sizeof(buf), "%" PRId64 ".%02" PRId64 " C",
		 v[SMP_TELEMETRY_TEMPERATURE_CDEGC] / 100,
		 (v[SMP_TELEMETRY_TEMPERATURE_CDEGC] < 0 ? -v[SMP_TELEMETRY_TEMPERATURE_CDEGC] :
							   v[SMP_TELEMETRY_TEMPERATURE_CDEGC]) %
			 100);
	gauge("temperature", v[SMP_TELEMETRY_TEMPERATURE_CDEGC], 8000, buf, tty);
	gauge_lines = 6;
	fflush(stdout);
}

static void watch_event(smp_client *c, const smp_event *ev, void *userdata)
{
	if (smp_event_get_type(ev) == SMP_EVENT_TELEMETRY)
		print_gauges(smp_event_get_device(ev), *(bool *)userdata);
	else
		print_event(c, ev, NULL);
}

static int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = { { "seconds", required_argument, NULL, 's' }, {} };
	double seconds = 0;
	bool tty = isatty(STDOUT_FILENO) && !arg_json;
	smp_device *d;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+s:", opts, NULL)) >= 0) {
		if (c == 's') {
			char *end;

			seconds = strtod(optarg, &end);
			if (*end || seconds <= 0)
				return usage_error("watch: --seconds needs a positive number");
		} else
			return usage_error("usage: watch [--seconds N]");
	}
	r = get_device(&d);
	if (r)
		return r;
	smp_device_ref(d);
	r = smp_device_subscribe_telemetry(d, true);
	if (r < 0) {
		r = device_failed(d, r, "watch");
		smp_device_unref(d);
		return r;
	}
	watching = true;
	gauge_lines = 0;
	smp_client_set_event_handler(client, watch_event, &tty);
	r = wait_events(seconds > 0 ? seconds : 1e12);
	smp_client_set_event_handler(client, print_event, NULL);
	watching = false;
	gauge_lines = 0;
	(void)smp_device_subscribe_telemetry(d, false);
	smp_device_unref(d);
	if (interrupted && !arg_script)
		interrupted = 0;
	if (r < 0) {
		fprintf(stderr, "smpctl: watch: %s\n", strerror(-r));
		return exit_for_errno(r);
	}
	return EXIT_OK;
}

/* ---- device control ---------------------------------------------------------------- */

static void warn_oneshot_claim(void)
{
	if (!arg_script)
		fprintf(stderr, "smpctl: note: the claim ends when smpctl exits; "
				"use 'smpctl run' to keep it for a session\n");
}

static int simple_device_cmd(int argc, char **argv)
{
	const char *cmd = argv[0];
	smp_device *d;
	int r;

	if (argc != 1)
		return usage_error("usage: %s", cmd);
	r = get_device(&d);
	if (r)
		return r;
	if (strcmp(cmd, "claim") == 0) {
		r = smp_device_claim(d);
		if (r >= 0)
			warn_oneshot_claim();
	} else if (strcmp(cmd, "release") == 0)
		r = smp_device_release(d);
	else if (strcmp(cmd, "start") == 0)
		r = smp_device_start(d);
	else if (strcmp(cmd, "stop") == 0)
		r = smp_device_stop(d);
	else if (strcmp(cmd, "estop") == 0)
		r = smp_device_emergency_stop(d);
	else
		r = smp_device_clear_fault(d);
	if (r < 0)
		return device_failed(d, r, cmd);
	if (arg_script)
		printf("%s: ok\n", cmd);
	return EXIT_OK;
}

static int cmd_set(int argc, char **argv)
{
	uint32_t v[4] = { SMP_KEEP, SMP_KEEP, SMP_KEEP, SMP_KEEP };
	smp_device *d;
	int r;

	if (argc < 2)
		return usage_error(
			"usage: set PARAM=VALUE... (voltage=8V current=1A rate=120Hz depth=0.8mm)");
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '='), name[32];
		enum smp_param p;

		if (!eq || (size_t)(eq - argv[i]) >= sizeof(name))
			return usage_error("set: \"%s\" is not PARAM=VALUE", argv[i]);
		memcpy(name, argv[i], (size_t)(eq - argv[i]));
		name[eq - argv[i]] = 0;
		if (parse_param_name(name, &p) < 0)
			return usage_error("set: unknown parameter \"%s\" (voltage, current, rate, depth)",
					   name);
		if (parse_param_value(p, eq + 1, &v[p]) < 0)
			return usage_error("set: \"%s\" is not a %s (e.g. %s)", eq + 1,
					   smp_param_to_string(p),
					   (const char *[]){ "8V or 8000mV", "1A or 1000mA",
							     "120Hz or 12000cHz",
							     "0.8mm or 800um" }[p]);
	}
	r = get_device(&d);
	if (r)
		return r;
	r = smp_device_set_parameters(d, v[0], v[1], v[2], v[3]);
	if (r < 0)
		return device_failed(d, r, "set");
	if (arg_script || isatty(STDOUT_FILENO)) {
		char buf[32];
		uint32_t a;

		printf("applied:");
		for (int p = 0; p < 4; p++)
			if (smp_device_get_setpoint(d, (enum smp_param)p, &a) >= 0)
				printf(" %s %s", smp_param_to_string((enum smp_param)p),
				       format_param((enum smp_param)p, a, buf, sizeof(buf)));
		printf("\n");
	}
	return EXIT_OK;
}

/* ---- sessions ------------------------------------------------------------------------ */

static json_object *session_json(smp_session *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(smp_session_get_id(s)));
	json_object_object_add(o, "device", json_object_new_string(smp_session_get_device_serial(s)));
	json_object_object_add(o, "client",
			       json_object_new_string(smp_session_get_client_pseudonym(s)));
	json_object_object_add(o, "operator", json_object_new_string(smp_session_get_operator(s)));
	json_object_object_add(o, "zone", json_object_new_string(smp_session_get_zone(s)));
	json_object_object_add(o, "pigment_lot",
			       json_object_new_string(smp_session_get_pigment_lot(s)));
	json_object_object_add(o, "pigment_manufacturer",
			       json_object_new_string(smp_session_get_pigment_manufacturer(s)));
	json_object_object_add(o, "cartridge",
			       json_object_new_string(smp_session_get_cartridge_id(s)));
	json_object_object_add(o, "cartridge_lot",
			       json_object_new_string(smp_session_get_cartridge_lot(s)));
	json_object_object_add(o, "needle", json_object_new_string(smp_session_get_needle(s)));
	json_object_object_add(o, "patch_test_time",
			       json_object_new_int64(smp_session_get_patch_test_time(s)));
	json_object_object_add(o, "screening_time",
			       json_object_new_int64(smp_session_get_screening_time(s)));
	json_object_object_add(o, "begin_usec",
			       json_object_new_int64((int64_t)smp_session_get_begin_usec(s)));
	json_object_object_add(o, "end_usec",
			       json_object_new_int64((int64_t)smp_session_get_end_usec(s)));
	json_object_object_add(o, "needle_on_usec",
			       json_object_new_int64((int64_t)smp_session_get_needle_on_usec(s)));
	json_object_object_add(o, "active", json_object_new_boolean(smp_session_is_active(s) > 0));
	json_object_object_add(o, "end_reason",
			       json_object_new_string(smp_session_get_end_reason(s)));
	json_object_object_add(o, "source",
			       json_object_new_string(smp_session_is_live(s) > 0 ? "smpd" :
										   "audit-log"));
	return o;
}

static void print_session(smp_session *s)
{
	char b1[64], b2[64];

	printf("session %s%s\n", smp_session_get_id(s),
	       smp_session_is_active(s) > 0 ? " (open)" : "");
	printf("  client:     %s\n", smp_session_get_client_pseudonym(s));
	printf("  operator:   %s\n", smp_session_get_operator(s));
	printf("  device:     %s\n", smp_session_get_device_serial(s));
	printf("  zone:       %s\n", smp_session_get_zone(s));
	printf("  pigment:    lot %s %s\n", smp_session_get_pigment_lot(s),
	       smp_session_get_pigment_manufacturer(s));
	printf("  cartridge:  %s lot %s needle %s\n", smp_session_get_cartridge_id(s),
	       smp_session_get_cartridge_lot(s), smp_session_get_needle(s));
	printf("  begin:      %s\n", format_time_usec(smp_session_get_begin_usec(s), b1, sizeof(b1)));
	printf("  end:        %s%s%s\n",
	       format_time_usec(smp_session_get_end_usec(s), b2, sizeof(b2)),
	       smp_session_get_end_reason(s)[0] ? ", " : "", smp_session_get_end_reason(s));
	printf("  needle on:  %" PRIu64 ".%03" PRIu64 " s\n",
	       smp_session_get_needle_on_usec(s) / 1000000,
	       smp_session_get_needle_on_usec(s) / 1000 % 1000);
}

/* Sessions of smpd (when running) followed by those only in the audit log. */
static int collect_sessions(smp_session ***ret, bool *ret_log_ok)
{
	smp_session **live = NULL, **logged = NULL, **all;
	int n_live = 0, n_log, r;
	size_t n = 0;

	r = connect_client();
	if (r)
		return -ENOTCONN;
	if (smp_client_is_daemon_running(client) > 0) {
		n_live = smp_client_get_sessions(client, &live);
		if (n_live < 0)
			return n_live;
	}
	n_log = smp_log_list_sessions(arg_log_dir, &logged);
	*ret_log_ok = n_log >= 0;
	if (n_log < 0)
		n_log = 0;
	all = calloc((size_t)n_live + (size_t)n_log + 1, sizeof(*all));
	if (!all) {
		smp_session_list_free(live);
		smp_session_list_free(logged);
		return -ENOMEM;
	}
	for (int i = 0; i < n_log; i++) {
		bool dup = false;

		for (int j = 0; j < n_live; j++)
			dup = dup || strcmp(smp_session_get_id(live[j]),
					    smp_session_get_id(logged[i])) == 0;
		if (!dup)
			all[n++] = smp_session_ref(logged[i]);
	}
	for (int j = 0; j < n_live; j++)
		all[n++] = smp_session_ref(live[j]);
	smp_session_list_free(live);
	smp_session_list_free(logged);
	*ret = all;
	return (int)n;
}

static char *read_key_file(const char *path);

/* --key=KEY ('k') or --key-file=FILE ('K'), the last one given wins. */
static int take_key_option(int c, char **key)
{
	free(*key);
	*key = c == 'k' ? strdup(optarg) : read_key_file(optarg);
	if (!*key && c == 'K') {
		fprintf(stderr, "smpctl: cannot read %s: %m\n", optarg);
		return -1;
	}
	return 0;
}

/* session report ID [--output=FILE] [--key=KEY|--key-file=FILE] */
static int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = { { "output", required_argument, NULL, 'o' },
					      { "key", required_argument, NULL, 'k' },
					      { "key-file", required_argument, NULL, 'K' },
					      {} };
	const char *output = NULL;
	char *key = NULL, *err = NULL, *path = NULL, *tmp = NULL, *abs = NULL;
	FILE *f;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) >= 0) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'k':
		case 'K':
			if (take_key_option(c, &key) < 0)
				return EXIT_FAIL;
			break;
		default:
			free(key);
			return usage_error(
				"usage: session report ID [--output=FILE] [--key=KEY|--key-file=FILE]");
		}
	}
	if (optind + 1 != argc) {
		free(key);
		return usage_error(
			"usage: session report ID [--output=FILE] [--key=KEY|--key-file=FILE]");
	}
	if (output)
		path = strdup(output);
	else if (asprintf(&path, "session-%s.html", argv[optind]) < 0)
		path = NULL;
	if (!path || asprintf(&tmp, "%s.tmp", path) < 0) {
		free(key);
		free(path);
		return EXIT_FAIL;
	}
	f = fopen(tmp, "we");
	if (!f) {
		fprintf(stderr, "smpctl: session report: cannot write %s: %m\n", tmp);
		free(key);
		free(path);
		free(tmp);
		return EXIT_FAIL;
	}
	r = session_report(arg_log_dir, argv[optind], key, f, &err);
	if (fclose(f) != 0 && r >= 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "smpctl: session report %s: %s\n", argv[optind],
			err ? err : strerror(-r));
		unlink(tmp);
		free(err);
		free(key);
		free(path);
		free(tmp);
		return r == -ENOENT ? EXIT_UNAVAILABLE : EXIT_FAIL;
	}
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "smpctl: session report: cannot write %s: %m\n", path);
		unlink(tmp);
		r = -errno;
	} else {
		abs = realpath(path, NULL);
		printf("%s\n", abs ? abs : path);
	}
	free(abs);
	free(tmp);
	free(path);
	if (r < 0) {
		free(key);
		return EXIT_FAIL;
	}
	/* the page is written; the exit status tells whether the log verified */
	if (key && r != SMP_LOG_INTACT) {
		fprintf(stderr, "smpctl: session report: the audit log is %s\n",
			r == SMP_LOG_TAMPERED  ? "tampered" :
			r == SMP_LOG_TRUNCATED ? "truncated" :
						 "unverifiable");
		free(key);
		return r == SMP_LOG_TAMPERED  ? EXIT_LOG_TAMPERED :
		       r == SMP_LOG_TRUNCATED ? EXIT_LOG_TRUNCATED :
						EXIT_LOG_UNVERIFIABLE;
	}
	free(key);
	return EXIT_OK;
}

static int cmd_session(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	smp_device *d;
	int r;

	if (strcmp(sub, "begin") == 0) {
		static const struct {
			const char *opt, *key;
		} names[] = {
			{ "client", "ClientPseudonym" },
			{ "operator", "Operator" },
			{ "zone", "Zone" },
			{ "lot", "PigmentLot" },
			{ "pigment-lot", "PigmentLot" },
			{ "manufacturer", "PigmentManufacturer" },
			{ "patch-test", "PatchTestTime" },
			{ "screening", "ScreeningTime" },
			{ "override", "OverrideReason" },
		};
		const char **md = calloc((size_t)argc, sizeof(char *));
		char **owned = calloc((size_t)argc, sizeof(char *));
		smp_session *s = NULL;

		if (!md || !owned) {
			free(md);
			free(owned);
			return EXIT_FAIL;
		}
		r = EXIT_OK;
		for (int i = 2; i < argc && r == EXIT_OK; i++) {
			char *eq = strchr(argv[i], '=');
			const char *key = NULL;

			if (!eq) {
				r = usage_error("session begin: \"%s\" is not KEY=VALUE", argv[i]);
				break;
			}
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
				if (strlen(names[k].opt) == (size_t)(eq - argv[i]) &&
				    strncmp(argv[i], names[k].opt, (size_t)(eq - argv[i])) == 0)
					key = names[k].key;
			if (!key) {
				r = usage_error("session begin: unknown key \"%.*s\" (client, operator, zone, "
						"lot, manufacturer, patch-test, screening, override)",
						(int)(eq - argv[i]), argv[i]);
				break;
			}
			if (strcmp(key, "PatchTestTime") == 0 || strcmp(key, "ScreeningTime") == 0) {
				int64_t t;

				if (parse_time(eq + 1, &t) < 0) {
					r = usage_error("session begin: \"%s\" is not a date (YYYY-MM-DD, "
							"Unix seconds, or -48h / -3d)",
							eq + 1);
					break;
				}
				if (asprintf(&owned[i - 2], "%s=%" PRId64, key, t) < 0)
					owned[i - 2] = NULL;
			} else if (asprintf(&owned[i - 2], "%s=%s", key, eq + 1) < 0)
				owned[i - 2] = NULL;
			if (!owned[i - 2])
				r = EXIT_FAIL;
			md[i - 2] = owned[i - 2];
		}
		if (r == EXIT_OK)
			r = get_device(&d);
		if (r == EXIT_OK) {
			int q = smp_device_begin_session(d, md, &s);

			if (q < 0)
				r = device_failed(d, q, "session begin");
			else {
				if (!arg_script)
					fprintf(stderr,
						"smpctl: note: the session ends when smpctl exits; "
						"use 'smpctl run' for a treatment\n");
				printf("%s\n", smp_session_get_id(s));
				smp_session_unref(s);
			}
		}
		for (int i = 0; i < argc; i++)
			free(owned[i]);
		free(owned);
		free(md);
		return r;
	}

	if (strcmp(sub, "end") == 0 || strcmp(sub, "zone") == 0 || strcmp(sub, "note") == 0) {
		smp_session *s;
		bool is_end = sub[0] == 'e';

		if ((is_end && argc != 2) || (!is_end && argc != 3))
			return usage_error(
				"usage: session end | session zone ZONE | session note TEXT");
		r = get_device(&d);
		if (r)
			return r;
		s = smp_device_get_session(d);
		if (!s) {
			fprintf(stderr, "smpctl: session %s: device %s has no open session\n", sub,
				smp_device_get_serial(d));
			return EXIT_REFUSED;
		}
		r = is_end	  ? smp_session_end(s) :
		    sub[0] == 'z' ? smp_session_change_zone(s, argv[2]) :
				    smp_session_annotate(s, argv[2]);
		if (r < 0)
			return session_failed(s, r,
					      is_end	    ? "session end" :
					      sub[0] == 'z' ? "session zone" :
							      "session note");
		if (arg_script)
			printf("session %s: ok\n", sub);
		return EXIT_OK;
	}

	if (strcmp(sub, "list") == 0 || strcmp(sub, "show") == 0) {
		smp_session **all = NULL;
		bool show = sub[1] == 'h', log_ok = false, found = false;
		const char *lot = NULL, *cart = NULL, *cart_lot = NULL;
		json_object *a = NULL;
		int n;

		/* list [--pigment-lot=L] [--cartridge=ID] [--cartridge-lot=L] */
		for (int k = 2; !show && k < argc; k++) {
			if (strncmp(argv[k], "--pigment-lot=", 14) == 0)
				lot = argv[k] + 14;
			else if (strncmp(argv[k], "--cartridge=", 12) == 0)
				cart = argv[k] + 12;
			else if (strncmp(argv[k], "--cartridge-lot=", 16) == 0)
				cart_lot = argv[k] + 16;
			else
				return usage_error(
					"usage: session list [--pigment-lot=LOT] [--cartridge=ID] "
					"[--cartridge-lot=LOT] | session show ID");
		}
		if (show && argc != 3)
			return usage_error("usage: session list [--pigment-lot=LOT] [--cartridge=ID] "
					   "[--cartridge-lot=LOT] | session show ID");
		n = collect_sessions(&all, &log_ok);
		if (n < 0) {
			if (n == -ENOTCONN)
				return EXIT_UNAVAILABLE;
			return client_failed(n, "session list");
		}
		if (arg_json && !show)
			a = json_object_new_array();
		else if (!show)
			printf("%-32s %-16s %-10s %-20s %s\n", "ID", "CLIENT", "ZONE", "BEGIN",
			       "STATE");
		for (int i = 0; i < n; i++) {
			smp_session *s = all[i];
			char b[64];

			if (show) {
				if (strcmp(smp_session_get_id(s), argv[2]) != 0)
					continue;
				found = true;
				if (arg_json)
					print_json(session_json(s));
				else
					print_session(s);
				continue;
			}
			if ((lot && strcmp(lot, smp_session_get_pigment_lot(s)) != 0) ||
			    (cart && strcmp(cart, smp_session_get_cartridge_id(s)) != 0) ||
			    (cart_lot && strcmp(cart_lot, smp_session_get_cartridge_lot(s)) != 0))
				continue;
			if (a)
				json_object_array_add(a, session_json(s));
			else
				printf("%-32s %-16s %-10s %-20s %s\n", smp_session_get_id(s),
				       smp_session_get_client_pseudonym(s), smp_session_get_zone(s),
				       format_time_usec(smp_session_get_begin_usec(s), b, sizeof(b)),
				       smp_session_is_active(s) > 0 ? "open" : "ended");
		}
		smp_session_list_free(all);
		if (a)
			print_json(a);
		if (!log_ok && !arg_json)
			fprintf(stderr,
				"smpctl: note: the audit log in %s is not readable; showing "
				"sessions of the running smpd only\n",
				arg_log_dir ? arg_log_dir : SMP_LOG_DEFAULT_DIR);
		if (show && !found) {
			fprintf(stderr, "smpctl: no session %s\n", argv[2]);
			return EXIT_UNAVAILABLE;
		}
		return EXIT_OK;
	}

	if (strcmp(sub, "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	return usage_error("usage: session begin|end|zone|note|list|show|report");
}

/* ---- log ------------------------------------------------------------------------------ */

static char *read_key_file(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = 0;
	return strdup(buf);
}

static void progress(uint64_t done, uint64_t total, void *userdata)
{
	if (total)
		fprintf(stderr, "\rverifying: %3u%%", (unsigned)(done * 100 / total));
}

static void csv_cell(const char *s, bool last)
{
	if (s[strcspn(s, ",\"\r\n")]) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else
		fputs(s, stdout);
	fputs(last ? "\r\n" : ",", stdout);
}

/*
 * log recall (--pigment-lot=LOT | --cartridge=ID | --cartridge-lot=LOT)
 * (--key=KEY | --key-file=FILE) [--format=table|json|csv]: who was treated
 * with that lot or cartridge, and when, from a log that verifies intact.
 * The sessions are libsmp's (the audit library's one reader of sessions).
 */
static int cmd_recall(int argc, char **argv)
{
	static const struct option opts[] = { { "pigment-lot", required_argument, NULL, 'p' },
					      { "cartridge", required_argument, NULL, 'C' },
					      { "cartridge-lot", required_argument, NULL, 'L' },
					      { "key", required_argument, NULL, 'k' },
					      { "key-file", required_argument, NULL, 'K' },
					      { "format", required_argument, NULL, 'f' },
					      {} };
	static const char *const usage =
		"usage: log recall (--pigment-lot=LOT | --cartridge=ID | "
		"--cartridge-lot=LOT) (--key=KEY | --key-file=FILE) [--format=table|json|csv]";
	const char *lot = NULL, *cart = NULL, *cart_lot = NULL, *format = arg_json ? "json" : "table";
	char *key = NULL, *desc = NULL;
	smp_session **all = NULL;
	json_object *a = NULL;
	int c, n, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'p':
			lot = optarg;
			break;
		case 'C':
			cart = optarg;
			break;
		case 'L':
			cart_lot = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'k':
		case 'K':
			if (take_key_option(c, &key) < 0)
				return EXIT_FAIL;
			break;
		default:
			free(key);
			return usage_error("%s", usage);
		}
	}
	if (optind != argc || (!lot && !cart && !cart_lot) || !key ||
	    (strcmp(format, "table") != 0 && strcmp(format, "json") != 0 &&
	     strcmp(format, "csv") != 0)) {
		free(key);
		return usage_error("%s", usage);
	}
	/*
	 * A recall answers from a log that verifies, or not at all: libsmp
	 * reads each file once, verifies every record (its hash, the chain,
	 * every seal) and reads the sessions out of the bytes that verified;
	 * nothing is printed unless the log is intact.  A malformed key is
	 * told apart from a bad filter first.
	 */
	{
		char *fp = NULL;

		r = smp_log_key_fingerprint(key, &fp);
		free(fp);
	}
	if (r >= 0 && ((lot && !lot[0]) || (cart && !cart[0]) || (cart_lot && !cart_lot[0]))) {
		free(key);
		fprintf(stderr, "smpctl: log recall: an empty lot or cartridge matches nothing\n");
		return EXIT_FAIL;
	}
	if (r >= 0)
		r = smp_log_list_sessions_verified(arg_log_dir, key, lot, cart, cart_lot, 0, 0,
						   &all, &desc);
	free(key);
	if (r != SMP_LOG_INTACT) {
		smp_session_list_free(all);
		fprintf(stderr, "smpctl: log recall: the audit log in %s does not verify: %s\n",
			arg_log_dir ? arg_log_dir : SMP_LOG_DEFAULT_DIR,
			r < 0 ? (r == -EINVAL ? "the verification key is malformed" : strerror(-r)) :
				desc);
		free(desc);
		return r == SMP_LOG_TAMPERED  ? EXIT_LOG_TAMPERED :
		       r == SMP_LOG_TRUNCATED ? EXIT_LOG_TRUNCATED :
		       r < 0 && r != -EINVAL  ? EXIT_FAIL :
						EXIT_LOG_UNVERIFIABLE;
	}
	free(desc);
	for (n = 0; all[n]; n++)
		;
	if (format[0] == 'j')
		a = json_object_new_array();
	else if (format[0] == 'c') {
		static const char *const h[] = { "begin",
						 "client",
						 "zone",
						 "operator",
						 "device",
						 "pigment_lot",
						 "pigment_manufacturer",
						 "cartridge",
						 "cartridge_lot",
						 "session" };

		for (size_t k = 0; k < sizeof(h) / sizeof(h[0]); k++)
			csv_cell(h[k], k + 1 == sizeof(h) / sizeof(h[0]));
	} else
		printf("%-23s  %-16s  %-8s  %-16s  %-16s  %-16s  %-16s  %-12s  %s\n", "BEGIN",
		       "CLIENT", "ZONE", "OPERATOR", "DEVICE", "PIGMENT LOT", "CARTRIDGE",
		       "CART. LOT", "SESSION");
	for (int i = 0; i < n; i++) {
		smp_session *s = all[i];
		char b[64];
		const char *row[10];

		if (a) {
			json_object_array_add(a, session_json(s));
			continue;
		}
		row[0] = format_time_usec(smp_session_get_begin_usec(s), b, sizeof(b));
		row[1] = smp_session_get_client_pseudonym(s);
		row[2] = smp_session_get_zone(s);
		row[3] = smp_session_get_operator(s);
		row[4] = smp_session_get_device_serial(s);
		row[5] = smp_session_get_pigment_lot(s);
		row[6] = smp_session_get_pigment_manufacturer(s);
		row[7] = smp_session_get_cartridge_id(s);
		row[8] = smp_session_get_cartridge_lot(s);
		row[9] = smp_session_get_id(s);
		if (format[0] == 'c')
			for (int k = 0; k < 10; k++)
				csv_cell(row[k], k == 9);
		else
			printf("%-23s  %-16s  %-8s  %-16s  %-16s  %-16s  %-16s  %-12s  %s\n", row[0],
			       row[1], row[2], row[3], row[4], row[5], row[7], row[8], row[9]);
	}
	smp_session_list_free(all);
	if (a)
		print_json(a);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

/* A date of the bundle's range: YYYY-MM-DD (UTC midnight; as --to, the end
 * of that day), YYYY-MM-DDTHH:MM:SS[Z] (UTC) or @SECONDS. */
static int parse_bundle_date(const char *s, bool end_of_day, int64_t *ret)
{
	struct tm tm = { 0 };
	const char *end;
	char *e;
	long long v;

	if (s[0] == '@') {
		errno = 0;
		v = strtoll(s + 1, &e, 10);
		if (errno || e == s + 1 || *e)
			return -EINVAL;
		*ret = v;
		return 0;
	}
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end && !*end && strlen(s) == 10) {
		*ret = (int64_t)timegm(&tm) + (end_of_day ? 86400 : 0);
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end && (!*end || (end[0] == 'Z' && !end[1]))) {
		*ret = (int64_t)timegm(&tm);
		return 0;
	}
	return -EINVAL;
}

/*
 * log bundle --from=DATE --to=DATE (--key=KEY | --key-file=FILE) OUTDIR:
 * the inspection bundle of the sessions begun in the range (bundle.c).
 */
static int cmd_bundle(int argc, char **argv)
{
	static const struct option opts[] = { { "from", required_argument, NULL, 'F' },
					      { "to", required_argument, NULL, 'T' },
					      { "key", required_argument, NULL, 'k' },
					      { "key-file", required_argument, NULL, 'K' },
					      {} };
	static const char *const usage = "usage: log bundle --from=DATE --to=DATE "
					 "(--key=KEY | --key-file=FILE) OUTDIR";
	const char *from = NULL, *to = NULL;
	char *key = NULL, *err = NULL, *abs;
	int64_t since, until;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'F':
			from = optarg;
			break;
		case 'T':
			to = optarg;
			break;
		case 'k':
		case 'K':
			if (take_key_option(c, &key) < 0)
				return EXIT_FAIL;
			break;
		default:
			free(key);
			return usage_error("%s", usage);
		}
	}
	if (optind + 1 != argc || !from || !to || !key) {
		free(key);
		return usage_error("%s", usage);
	}
	if (parse_bundle_date(from, false, &since) < 0 || parse_bundle_date(to, true, &until) < 0) {
		free(key);
		return usage_error("log bundle: bad date range: \"%s\" is not a date (YYYY-MM-DD, "
				   "YYYY-MM-DDTHH:MM:SS in UTC, or @SECONDS)",
				   parse_bundle_date(from, false, &since) < 0 ? from : to);
	}
	if (since < 0 || until <= since) {
		free(key);
		return usage_error("log bundle: bad date range: --from %s is not before --to %s%s",
				   from, to,
				   since < 0 ? " (or lies before 1970, when no session was)" : "");
	}
	r = log_bundle(arg_log_dir, since, until, key, argv[optind], &err);
	free(key);
	if (r != 0) {
		fprintf(stderr, "smpctl: log bundle: refused: %s\n",
			err ? err : strerror(r < 0 ? -r : EIO));
		free(err);
		if (r > 0)
			return r == SMP_LOG_TAMPERED  ? EXIT_LOG_TAMPERED :
			       r == SMP_LOG_TRUNCATED ? EXIT_LOG_TRUNCATED :
							EXIT_LOG_UNVERIFIABLE;
		return r == -EINVAL ? EXIT_LOG_UNVERIFIABLE : EXIT_FAIL;
	}
	abs = realpath(argv[optind], NULL);
	printf("%s\n", abs ? abs : argv[optind]);
	free(abs);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_log(int argc, char **argv)
{
	static const struct option opts[] = { { "key", required_argument, NULL, 'k' },
					      { "key-file", required_argument, NULL, 'K' },
					      { "format", required_argument, NULL, 'f' },
					      { "session", required_argument, NULL, 's' },
					      { "client", required_argument, NULL, 'c' },
					      { "since", required_argument, NULL, 'S' },
					      { "until", required_argument, NULL, 'U' },
					      { "journal", required_argument, NULL, 'J' },
					      { "machine", required_argument, NULL, 'M' },
					      { "host", required_argument, NULL, 'H' },
					      { "local", required_argument, NULL, 'L' },
					      {} };
	const char *sub = argc > 1 ? argv[1] : "", *session = NULL, *who = NULL;
	/* log verify --journal: a collector's copy (docs/fleet.md) */
	const char *journal = NULL, *machine = NULL, *host = NULL, *local = NULL;
	char *key = NULL, *desc = NULL;
	enum smp_log_format fmt = SMP_LOG_FORMAT_JSON;
	int64_t since = 0, until = 0;
	int c, r;

	if (strcmp(sub, "recall") == 0)
		return cmd_recall(argc - 1, argv + 1);
	if (strcmp(sub, "bundle") == 0)
		return cmd_bundle(argc - 1, argv + 1);
	if (strcmp(sub, "verify") != 0 && strcmp(sub, "export") != 0)
		return usage_error(
			"usage: log verify [--key=KEY|--key-file=FILE] | log export [options] | "
			"log recall [options] | log bundle [options] OUTDIR");
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'k':
		case 'K':
			if (take_key_option(c, &key) < 0)
				return EXIT_FAIL;
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				fmt = SMP_LOG_FORMAT_JSON;
			else if (strcmp(optarg, "csv") == 0)
				fmt = SMP_LOG_FORMAT_CSV;
			else {
				free(key);
				return usage_error("log export: --format is json or csv");
			}
			break;
		case 's':
			session = optarg;
			break;
		case 'c':
			who = optarg;
			break;
		case 'S':
		case 'U':
			if (parse_time(optarg, c == 'S' ? &since : &until) < 0) {
				free(key);
				return usage_error("log: \"%s\" is not a date", optarg);
			}
			break;
		/* log verify --journal=JDIR (--machine=ID|--host=NAME) [--local=DIR] */
		case 'J':
			journal = optarg;
			break;
		case 'M':
			machine = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'L':
			local = optarg;
			break;
		default:
			free(key);
			return usage_error("usage: log verify [--key=KEY|--key-file=FILE] "
					   "[--journal=JDIR (--machine=ID|--host=NAME) "
					   "[--local=DIR]] | "
					   "log export [--format=json|csv] [--session=ID] [--client=P] "
					   "[--since=DATE] [--until=DATE]");
		}
	}
	if (optind + 1 != argc) {
		free(key);
		return usage_error("log %s: unexpected argument \"%s\"", sub, argv[optind + 1]);
	}
	if ((journal || machine || host || local) &&
	    (sub[0] != 'v' || !journal || !machine == !host)) {
		free(key);
		return usage_error("log verify --journal=JDIR needs exactly one of --machine=ID, "
				   "--host=NAME (and --local=DIR only with them)");
	}

	if (sub[0] == 'e') {
		int64_t n;

		free(key);
		n = smp_log_export(arg_log_dir, fmt, session, who, (uint64_t)since * 1000000,
				   (uint64_t)until * 1000000, stdout);
		fflush(stdout);
		if (n < 0) {
			fprintf(stderr, "smpctl: log export from %s: %s\n",
				arg_log_dir ? arg_log_dir : SMP_LOG_DEFAULT_DIR, strerror((int)-n));
			return n == -EBADMSG ? EXIT_LOG_TAMPERED : EXIT_FAIL;
		}
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "%" PRId64 " records\n", n);
		return EXIT_OK;
	}

	if (journal)
		r = smp_log_verify_journal(journal, machine, host, key, local, &desc);
	else
		r = smp_log_verify(arg_log_dir, key,
				   isatty(STDERR_FILENO) && !arg_json ? progress : NULL, NULL, &desc);
	free(key);
	if (!journal && isatty(STDERR_FILENO) && !arg_json)
		fprintf(stderr, "\r\033[2K");
	if (r < 0) {
		fprintf(stderr, "smpctl: log verify %s: %s\n",
			journal	    ? journal :
			arg_log_dir ? arg_log_dir :
				      SMP_LOG_DEFAULT_DIR,
			r == -EINVAL ? "the verification key is malformed" : strerror(-r));
		return r == -ENOENT ? EXIT_LOG_UNVERIFIABLE : EXIT_FAIL;
	}
	if (arg_json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "status",
				       json_object_new_string((const char *[]){
					       "intact", "", "", "tampered", "truncated",
					       "unverifiable", "gap" }[r]));
		json_object_object_add(o, "description", json_object_new_string(desc));
		print_json(o);
	} else
		printf("%s\n", desc);
	free(desc);
	switch (r) {
	case SMP_LOG_INTACT:
		return EXIT_OK;
	case SMP_LOG_TAMPERED:
		return EXIT_LOG_TAMPERED;
	case SMP_LOG_TRUNCATED:
		return EXIT_LOG_TRUNCATED;
	case SMP_LOG_GAP:
		return EXIT_LOG_GAP;
	default:
		return EXIT_LOG_UNVERIFIABLE;
	}
}

/* ---- scripts: one connection for a whole treatment ---------------------------------- */

/* Split a line shell-like: whitespace, '...' and "..." quoting, # comments. */
static int split_line(char *line, char **argv, int max)
{
	int argc = 0;
	char *in = line, *out;

	for (;;) {
		while (isspace((unsigned char)*in))
			in++;
		if (!*in || *in == '#')
			break;
		if (argc == max - 1)
			return -E2BIG;
		argv[argc++] = out = in;
		while (*in && !isspace((unsigned char)*in)) {
			if (*in == '\'' || *in == '"') {
				char q = *in++;

				while (*in && *in != q)
					*out++ = *in++;
				if (*in != q)
					return -EINVAL;
				in++;
			} else
				*out++ = *in++;
		}
		if (*in)
			in++;
		*out = 0;
	}
	argv[argc] = NULL;
	return argc;
}

static int cmd_wait_state(int argc, char **argv)
{
	double timeout = argc > 2 ? strtod(argv[2], NULL) : 5;
	struct timespec start, now;
	smp_device *d;
	int r;

	if (argc < 2 || argc > 3 || timeout <= 0)
		return usage_error("usage: wait-state STATE [SECONDS]");
	r = get_device(&d);
	if (r)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (strcmp(smp_device_state_to_string(smp_device_get_state(d)), argv[1]) == 0) {
			printf("state %s\n", argv[1]);
			return EXIT_OK;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) > timeout || interrupted) {
			fprintf(stderr, "smpctl: device %s is %s, not %s, after %.1f s\n",
				smp_device_get_serial(d),
				smp_device_state_to_string(smp_device_get_state(d)), argv[1],
				timeout);
			return EXIT_FAULT;
		}
		r = smp_client_wait(client, 50000);
		if (r < 0)
			return exit_for_errno(r);
		d = smp_client_find_device(client, arg_device);
		if (!d)
			return EXIT_UNAVAILABLE;
	}
}

/*
 * Until the next script line can be read, keep dispatching the bus: a
 * needle the script started runs only while smpctl answers smpd's pings
 * (H6, docs/libsmp.md), also while a person types the next command.  The
 * stream is unbuffered (see cmd_run), so poll() sees all there is.
 */
static void wait_for_input(FILE *f)
{
	struct pollfd p = { .fd = fileno(f), .events = POLLIN };

	while (!interrupted) {
		if (poll(&p, 1, 0) != 0)
			return; /* input, end of file, or an error getline() reports */
		if (smp_client_wait(client, 50000) < 0)
			return; /* no connection: nothing to answer */
	}
}

static int cmd_run(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "-";
	FILE *f;
	char *line = NULL;
	size_t sz = 0;
	unsigned lineno = 0;
	int r = EXIT_OK;

	if (argc > 2)
		return usage_error("usage: run [FILE|-]");
	if (arg_script)
		return usage_error("run: scripts do not nest");
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	if (!f) {
		fprintf(stderr, "smpctl: cannot open %s: %m\n", path);
		return EXIT_FAIL;
	}
	r = need_daemon();
	if (r) {
		if (f != stdin)
			fclose(f);
		return r;
	}
	arg_script = true;
	/* one read(2) per byte, nothing hidden from poll() in a stdio buffer */
	setvbuf(f, NULL, _IONBF, 0);
	for (;;) {
		char *av[64], *p;
		bool ignore = false, expect_fail = false;
		int ac, q;

		wait_for_input(f);
		/* getline() never leaves line NULL after a read; -O2 cannot tell */
		if (interrupted || getline(&line, &sz, f) <= 0 || !line)
			break;
		p = line;
		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p && *p != '#' && strncmp(p, "echo", 4) != 0) {
			/* echo the line before split_line() cuts it up */
			printf("> %s", p);
			if (!strchr(p, '\n'))
				printf("\n");
			fflush(stdout);
		}
		if (*p == '-') {
			ignore = true;
			p++;
		} else if (*p == '!') {
			expect_fail = true;
			p++;
		}
		ac = split_line(p, av, 64);
		if (ac < 0) {
			fprintf(stderr, "smpctl: %s:%u: cannot parse the line\n", path, lineno);
			r = EXIT_USAGE;
			break;
		}
		if (ac == 0)
			continue;
		q = run_command(ac, av);
		fflush(stdout);
		if (expect_fail) {
			if (q == EXIT_OK) {
				fprintf(stderr, "smpctl: %s:%u: succeeded but was expected to fail\n",
					path, lineno);
				r = EXIT_EXPECTED;
				break;
			}
			printf("(refused as expected)\n");
			continue;
		}
		if (q != EXIT_OK && !ignore) {
			fprintf(stderr, "smpctl: %s:%u: stopping the script\n", path, lineno);
			r = q;
			break;
		}
	}
	if (interrupted && r == EXIT_OK) {
		fprintf(stderr, "smpctl: interrupted\n");
		r = EXIT_FAIL;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	arg_script = false;
	return r;
}

/* ---- dispatch -------------------------------------------------------------------------- */

extern char **environ;

/*
 * system(), but dispatching the bus while the command runs: a needle the
 * script started must keep answering smpd's pings (H6).  Returns the wait
 * status, or -1.
 */
static int run_shell(const char *cmd)
{
	char *const av[] = { (char *)"sh", (char *)"-c", (char *)cmd, NULL };
	pid_t pid, w;
	int st;

	if (posix_spawn(&pid, "/bin/sh", NULL, NULL, av, environ) != 0)
		return -1;
	for (;;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		if (w < 0 && errno != EINTR)
			return -1;
		if (smp_client_wait(client, 10000) < 0)
			break; /* no connection: nothing to answer, just wait */
	}
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	return w == pid ? st : -1;
}

static int script_only(int argc, char **argv)
{
	if (!arg_script)
		return usage_error("%s works only inside 'smpctl run'", argv[0]);
	if (strcmp(argv[0], "sleep") == 0) {
		char *end = NULL;
		double s = argc == 2 ? strtod(argv[1], &end) : -1;
		int r;

		if (s < 0 || !end || *end)
			return usage_error("usage: sleep SECONDS");
		r = wait_events(s);
		return r < 0 ? exit_for_errno(r) : EXIT_OK;
	}
	if (strcmp(argv[0], "echo") == 0) {
		for (int i = 1; i < argc; i++)
			printf("%s%s", i > 1 ? " " : "", argv[i]);
		printf("\n");
		return EXIT_OK;
	}
	if (strcmp(argv[0], "shell") == 0) {
		int st;

		if (argc != 2)
			return usage_error("usage: shell 'COMMAND'");
		fflush(stdout);
		st = run_shell(argv[1]);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "smpctl: shell: \"%s\" failed\n", argv[1]);
			return EXIT_FAIL;
		}
		(void)smp_client_dispatch(client);
		return EXIT_OK;
	}
	return cmd_wait_state(argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "status", cmd_status },	  { "devices", cmd_devices },
	{ "watch", cmd_watch },		  { "claim", simple_device_cmd },
	{ "release", simple_device_cmd }, { "start", simple_device_cmd },
	{ "stop", simple_device_cmd },	  { "estop", simple_device_cmd },
	{ "clear", simple_device_cmd },	  { "set", cmd_set },
	{ "session", cmd_session },	  { "log", cmd_log },
	{ "limits", cmd_limits },	  { "run", cmd_run },
	{ "sleep", script_only },	  { "echo", script_only },
	{ "shell", script_only },	  { "wait-state", script_only },
};

static int run_command(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].fn(argc, argv);
	return usage_error("unknown command \"%s\"", argv[0]);
}

static void help(void)
{
	printf("smpctl [OPTIONS] COMMAND ...\n\n"
	       "Control smpd, the scalp-micropigmentation safety daemon.\n\n"
	       "Commands:\n"
	       "  status                       daemon, policy, audit log and devices\n"
	       "  devices                      attached devices in detail\n"
	       "  watch [--seconds N]          live telemetry gauges (Ctrl-C ends)\n"
	       "  claim | release              take / give up the device (ends with smpctl)\n"
	       "  set PARAM=VALUE...           voltage=8V current=1A rate=120Hz depth=0.8mm\n"
	       "  start | stop | estop | clear run, stop, emergency stop, clear a fault\n"
	       "  session begin KEY=VALUE...   client= operator= zone= lot= manufacturer=\n"
	       "                               patch-test= screening= override=\n"
	       "  session end | zone ZONE | note TEXT\n"
	       "  session list [--pigment-lot=L] [--cartridge=ID] [--cartridge-lot=L] | show ID\n"
	       "  session report ID [--output=F] [--key=K|--key-file=F]   HTML report\n"
	       "  limits show                  effective limits and where they come from\n"
	       "  log verify [--key=K|--key-file=F]\n"
	       "             [--journal=JDIR (--machine=ID|--host=NAME) [--local=DIR]]\n"
	       "                               a workstation's log at a collector\n"
	       "  log export [--format=json|csv] [--session=ID] [--client=P] [--since=D] [--until=D]\n"
	       "  log recall (--pigment-lot=L|--cartridge=ID|--cartridge-lot=L) (--key=K|--key-file=F)\n"
	       "             [--format=table|json|csv]\n"
	       "  log bundle --from=D --to=D (--key=K|--key-file=F) OUTDIR   inspection bundle\n"
	       "  run [FILE|-]                 run commands from FILE on one connection\n"
	       "                               (also: sleep S, echo, shell CMD, wait-state STATE [S];\n"
	       "                               a leading '-' ignores a failure, '!' expects one)\n\n"
	       "Options:\n"
	       "  -h --help                    this help\n"
	       "     --version                 the version\n"
	       "     --bus-address=ADDRESS     the bus smpd is on (tests, demo)\n"
	       "     --user                    the user session bus\n"
	       "  -d --device=SERIAL           the device (default: the only one)\n"
	       "  -j --json                    JSON output of read commands\n"
	       "     --log-dir=DIR             the audit log (default " SMP_LOG_DEFAULT_DIR ")\n\n"
	       "Exit status: 0 ok, 1 failure, 2 usage, 3/4/5 log tampered/truncated/unverifiable,\n"
	       "10 not authorized, 11 refused by the safety policy, 12 smpd or device unavailable,\n"
	       "13 fault latched, 14 claim conflict, 15 script: an expected failure succeeded.\n");
}

int main(int argc, char **argv)
{
	enum {
		ARG_BUS_ADDRESS = 0x100,
		ARG_USER,
		ARG_LOG_DIR,
		ARG_VERSION
	};
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
					      { "version", no_argument, NULL, ARG_VERSION },
					      { "bus-address", required_argument, NULL,
						ARG_BUS_ADDRESS },
					      { "user", no_argument, NULL, ARG_USER },
					      { "device", required_argument, NULL, 'd' },
					      { "json", no_argument, NULL, 'j' },
					      { "log-dir", required_argument, NULL, ARG_LOG_DIR },
					      {} };
	struct sigaction sa = { .sa_handler = on_signal };
	int c, r;

	while ((c = getopt_long(argc, argv, "+hd:j", opts, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return EXIT_OK;
		case ARG_VERSION:
			printf("smpctl %s\n", SMPCTL_VERSION);
			return EXIT_OK;
		case ARG_BUS_ADDRESS:
			arg_bus_address = optarg;
			break;
		case ARG_USER:
			arg_user = true;
			break;
		case 'd':
			arg_device = optarg;
			break;
		case 'j':
			arg_json = true;
			break;
		case ARG_LOG_DIR:
			arg_log_dir = optarg;
			break;
		default:
			fputs("Try 'smpctl --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("no command");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r = run_command(argc - optind, argv + optind);
	/* Dropping the connection releases a claim: smpd stops the needle. */
	client = smp_client_unref(client);
	return r;
}
