/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * End-to-end scenarios of libsmp against the real smpd and smp-sim, run by
 * test_libsmp.py on a private bus.  usage:
 *   test-libsmp-e2e BUS_ADDRESS SCENARIO [SIM_CONTROL_SOCKET] [ARG]
 * Exits 0 when every check of the scenario held, 1 (naming the check) if not.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libsmp.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)
#define CHECK_R(expr, want)                                                                   \
	do {                                                                                  \
		int _r = (int)(expr);                                                         \
		if (_r != (want)) {                                                           \
			fprintf(stderr, "%s:%d: %s = %d (%s), want %d\n", __FILE__, __LINE__, \
				#expr, _r, _r < 0 ? strerror(-_r) : "", (want));              \
			exit(1);                                                              \
		}                                                                             \
	} while (0)

static const char *bus_address, *sim_ctl;
static double slow = 1; /* timeouts x5 under valgrind (SMP_TEST_WRAPPER) */

struct counts {
	int added, removed, changed, telemetry, fault, begun, warning, ended, lost, appeared,
		disconnected;
	char fault_kind[64];
	char end_reason[128];
	char warning_kind[64];
	uint32_t seconds_left;
};

static void count_events(smp_client *c, const smp_event *ev, void *userdata)
{
	struct counts *n = userdata;

	switch (smp_event_get_type(ev)) {
	case SMP_EVENT_DEVICE_ADDED:
		n->added++;
		CHECK(smp_event_get_device(ev));
		break;
	case SMP_EVENT_DEVICE_REMOVED:
		n->removed++;
		CHECK(smp_device_get_state(smp_event_get_device(ev)) == SMP_DEVICE_STATE_GONE);
		break;
	case SMP_EVENT_DEVICE_CHANGED:
		n->changed++;
		break;
	case SMP_EVENT_TELEMETRY:
		n->telemetry++;
		break;
	case SMP_EVENT_FAULT:
		n->fault++;
		snprintf(n->fault_kind, sizeof(n->fault_kind), "%s", smp_event_get_kind(ev));
		CHECK(smp_event_get_message(ev)[0]);
		break;
	case SMP_EVENT_SESSION_BEGUN:
		n->begun++;
		CHECK(smp_event_get_session(ev));
		/* no dispatching from inside the handler */
		CHECK_R(smp_client_dispatch(c), -EBUSY);
		CHECK_R(smp_client_wait(c, 0), -EBUSY);
		break;
	case SMP_EVENT_SESSION_WARNING:
		n->warning++;
		CHECK(smp_event_get_session(ev) && smp_event_get_device(ev));
		snprintf(n->warning_kind, sizeof(n->warning_kind), "%s", smp_event_get_kind(ev));
		n->seconds_left = smp_event_get_seconds_left(ev);
		break;
	case SMP_EVENT_SESSION_ENDED:
		n->ended++;
		CHECK(smp_event_get_session(ev));
		snprintf(n->end_reason, sizeof(n->end_reason), "%s", smp_event_get_kind(ev));
		break;
	case SMP_EVENT_DAEMON_LOST:
		n->lost++;
		break;
	case SMP_EVENT_DAEMON_APPEARED:
		n->appeared++;
		break;
	case SMP_EVENT_DISCONNECTED:
		n->disconnected++;
		break;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Dispatch through the caller's own poll() loop until *flag >= want. */
static void poll_until(smp_client *c, const int *flag, int want, double timeout)
{
	double end = now_s() + timeout * slow;

	while (*flag < want) {
		struct pollfd p = { .fd = smp_client_get_fd(c),
				    .events = (short)smp_client_get_events(c) };

		CHECK(p.fd >= 0);
		CHECK(now_s() < end);
		CHECK(poll(&p, 1, 100) >= 0);
		CHECK_R(smp_client_dispatch(c), 0);
	}
}

/* Blocking convenience path. */
static void wait_until(smp_client *c, const int *flag, int want, double timeout)
{
	double end = now_s() + timeout * slow;

	while (*flag < want) {
		CHECK(now_s() < end);
		CHECK_R(smp_client_wait(c, 100000), 0);
	}
}

static void wait_state(smp_client *c, smp_device *d, enum smp_device_state s, double timeout)
{
	double end = now_s() + timeout * slow;

	while (smp_device_get_state(d) != s) {
		if (now_s() > end) {
			fprintf(stderr, "state is %s, want %s\n",
				smp_device_state_to_string(smp_device_get_state(d)),
				smp_device_state_to_string(s));
			exit(1);
		}
		CHECK_R(smp_client_wait(c, 50000), 0);
	}
}

static void sim(const char *cmd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[512];
	ssize_t n;
	int fd;

	CHECK(sim_ctl);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sim_ctl);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd) && write(fd, "\n", 1) == 1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n >= 2 && strncmp(buf, "ok", 2) == 0);
}

static smp_client *connect_client(struct counts *n)
{
	smp_client *c = NULL;

	CHECK_R(smp_client_new_address(bus_address, &c), 0);
	CHECK(c);
	if (n)
		CHECK_R(smp_client_set_event_handler(c, count_events, n), 0);
	CHECK_R(smp_client_set_method_timeout(c, 20 * 1000000ULL), 0);
	return c;
}

static smp_session *begin(smp_device *d, const char *client, const char *zone)
{
	char md_client[128], md_zone[64], md_patch[64];
	const char *md[] = { md_client,
			     "Operator=op-1",
			     md_zone,
			     "PigmentLot=PIG-LOT-7",
			     "PigmentManufacturer=Acme",
			     md_patch,
			     "ScreeningTime=1700000000",
			     NULL };
	smp_session *s = NULL;

	snprintf(md_client, sizeof(md_client), "ClientPseudonym=%s", client);
	snprintf(md_zone, sizeof(md_zone), "Zone=%s", zone);
	snprintf(md_patch, sizeof(md_patch), "PatchTestTime=%lld", (long long)time(NULL) - 48 * 3600);
	CHECK_R(smp_device_begin_session(d, md, &s), 0);
	CHECK(s);
	return s;
}

/* Every getter, the fd interface and argument checking on a fresh client. */
static void scenario_basics(void)
{
	smp_client *c = connect_client(NULL);
	smp_device *d;
	uint32_t v, min, max, dia, exp;
	uint64_t t;
	char *digest = NULL;
	const char *layer, *source;
	int64_t tv;

	CHECK_R(smp_client_is_daemon_running(c), 1);
	CHECK_R(smp_client_get_api_version(c, &v), 0);
	CHECK(v == 1);
	CHECK_R(smp_client_get_policy_digest(c, &digest), 0);
	CHECK(strlen(digest) == 64);
	free(digest);
	CHECK_R(smp_client_get_healing_interval_days(c, &v), 0);
	CHECK(v == 10); /* the shipped policy's HealingIntervalDays */
	CHECK_R(smp_client_is_audit_available(c), 1);
	CHECK(smp_client_get_error_name(c) == NULL && smp_client_get_error_message(c) == NULL);
	CHECK(smp_client_get_fd(c) >= 0);
	CHECK(smp_client_get_events(c) >= 0); /* 0: messages queued, dispatch now */
	CHECK_R(smp_client_get_timeout(c, &t), 0);
	CHECK_R(smp_client_dispatch(c), 0);
	CHECK_R(smp_client_wait(c, 1000), 0);

	CHECK(smp_client_get_n_devices(c) == 1);
	d = smp_client_get_device(c, 0);
	CHECK(d);
	CHECK(smp_client_get_device(c, 1) == NULL);
	CHECK(smp_client_find_device(c, NULL) == d);
	CHECK(smp_client_find_device(c, smp_device_get_serial(d)) == d);
	CHECK(smp_client_find_device(c, "NO-SUCH-SERIAL") == NULL);
	CHECK(smp_device_get_client(d) == c);
	CHECK(strncmp(smp_device_get_path(d), "/org/libsmp/Smp1/device/", 24) == 0);
	CHECK(strcmp(smp_device_get_serial(d), "SIM-X2-000001") == 0);
	CHECK(strcmp(smp_device_get_model(d), "SMP-X2") == 0);
	CHECK(smp_device_get_firmware(d)[0]);
	CHECK(strcmp(smp_device_get_backend(d), "socket") == 0);
	CHECK(smp_device_get_state(d) == SMP_DEVICE_STATE_IDLE);
	CHECK(strcmp(smp_device_state_to_string(SMP_DEVICE_STATE_ESTOP), "estop") == 0);
	CHECK(strcmp(smp_device_state_to_string((enum smp_device_state)99), "unknown") == 0);
	CHECK(strcmp(smp_device_get_fault_kind(d), "") == 0);
	CHECK(strcmp(smp_device_get_fault_message(d), "") == 0);
	CHECK(strcmp(smp_device_get_device_faults(d), "") == 0);
	CHECK_R(smp_device_is_claimed(d), 0);
	CHECK_R(smp_device_is_claimed_by_me(d), 0);
	CHECK(smp_device_get_session(d) == NULL);
	CHECK_R(smp_device_get_setpoint(d, SMP_PARAM_VOLTAGE, &v), -ENODATA);
	CHECK_R(smp_device_has_cartridge(d), 1);
	CHECK(strcmp(smp_device_get_cartridge_id(d), "SIM-CART-0001") == 0);
	CHECK(strcmp(smp_device_get_cartridge_lot(d), "SIM-LOT-0001") == 0);
	CHECK(strcmp(smp_device_get_cartridge_needle(d), "3RL") == 0);
	CHECK_R(smp_device_get_cartridge_info(d, &dia, &exp), 0);
	CHECK(dia == 250 && exp > 20000);
	CHECK_R(smp_device_is_cartridge_used(d), 0);
	CHECK_R(smp_device_is_cartridge_expired(d), 0);
	for (int p = 0; p < 4; p++) {
		CHECK_R(smp_device_get_limit(d, (enum smp_param)p, SMP_BOUND_MIN, &min, &layer,
					     &source),
			0);
		CHECK(layer[0] && source[0]);
		CHECK_R(smp_device_get_limit(d, (enum smp_param)p, SMP_BOUND_MAX, &max, &layer,
					     &source),
			0);
		CHECK(layer[0] && source[0]);
		CHECK(min <= max && max > 0);
		CHECK(smp_param_to_string((enum smp_param)p) != NULL);
	}
	CHECK(strcmp(smp_param_to_string(SMP_PARAM_DEPTH), "depth") == 0);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_VOLTAGE_MV, &tv), -ENODATA);
	CHECK_R(smp_device_refresh(d), 0);
	CHECK(smp_device_get_error_name(d) == NULL && smp_device_get_error_message(d) == NULL);
	CHECK_R(smp_device_get_error_limit(d, NULL, NULL, NULL, NULL, NULL, NULL), -ENODATA);

	/* invalid arguments: -EINVAL or NULL, never a crash */
	CHECK_R(smp_client_new(NULL), -EINVAL);
	CHECK_R(smp_client_new_user(NULL), -EINVAL);
	CHECK_R(smp_client_new_address(NULL, NULL), -EINVAL);
	CHECK_R(smp_client_new_address("", NULL), -EINVAL);
	{
		smp_client *bad = NULL;

		CHECK(smp_client_new_address("unix:path=/nonexistent/bus", &bad) < 0);
		CHECK(bad == NULL);
	}
	CHECK(smp_client_ref(NULL) == NULL && smp_client_unref(NULL) == NULL);
	CHECK(smp_device_ref(NULL) == NULL && smp_device_unref(NULL) == NULL);
	CHECK(smp_session_ref(NULL) == NULL && smp_session_unref(NULL) == NULL);
	CHECK(smp_session_list_free(NULL) == NULL);
	CHECK_R(smp_client_get_fd(NULL), -EINVAL);
	CHECK_R(smp_client_get_events(NULL), -EINVAL);
	CHECK_R(smp_client_get_timeout(NULL, &t), -EINVAL);
	CHECK_R(smp_client_get_timeout(c, NULL), -EINVAL);
	CHECK_R(smp_client_dispatch(NULL), -EINVAL);
	CHECK_R(smp_client_wait(NULL, 0), -EINVAL);
	CHECK_R(smp_client_set_event_handler(NULL, NULL, NULL), -EINVAL);
	CHECK_R(smp_client_set_method_timeout(NULL, 0), -EINVAL);
	CHECK_R(smp_client_is_daemon_running(NULL), -EINVAL);
	CHECK_R(smp_client_get_api_version(c, NULL), -EINVAL);
	CHECK_R(smp_client_get_api_version(NULL, &v), -EINVAL);
	CHECK_R(smp_client_get_policy_digest(c, NULL), -EINVAL);
	CHECK_R(smp_client_get_healing_interval_days(c, NULL), -EINVAL);
	CHECK_R(smp_client_get_healing_interval_days(NULL, &v), -EINVAL);
	CHECK_R(smp_client_is_audit_available(NULL), -EINVAL);
	CHECK_R(smp_client_reload(NULL), -EINVAL);
	CHECK(smp_client_get_n_devices(NULL) == 0);
	CHECK(smp_client_get_device(NULL, 0) == NULL);
	CHECK(smp_client_find_device(NULL, NULL) == NULL);
	CHECK_R(smp_client_get_sessions(NULL, NULL), -EINVAL);
	CHECK_R(smp_client_get_sessions(c, NULL), -EINVAL);
	CHECK(smp_client_get_error_name(NULL) == NULL && smp_client_get_error_message(NULL) == NULL);
	CHECK(smp_event_get_type(NULL) == 0 && smp_event_get_device(NULL) == NULL &&
	      smp_event_get_session(NULL) == NULL && smp_event_get_seconds_left(NULL) == 0);
	CHECK(strcmp(smp_event_get_kind(NULL), "") == 0 &&
	      strcmp(smp_event_get_message(NULL), "") == 0);
	CHECK(smp_device_get_client(NULL) == NULL && smp_device_get_path(NULL) == NULL &&
	      smp_device_get_serial(NULL) == NULL && smp_device_get_model(NULL) == NULL &&
	      smp_device_get_firmware(NULL) == NULL && smp_device_get_backend(NULL) == NULL &&
	      smp_device_get_fault_kind(NULL) == NULL && smp_device_get_fault_message(NULL) == NULL &&
	      smp_device_get_device_faults(NULL) == NULL && smp_device_get_session(NULL) == NULL &&
	      smp_device_get_cartridge_id(NULL) == NULL &&
	      smp_device_get_cartridge_lot(NULL) == NULL &&
	      smp_device_get_cartridge_needle(NULL) == NULL &&
	      smp_device_get_error_name(NULL) == NULL && smp_device_get_error_message(NULL) == NULL);
	CHECK(smp_device_get_state(NULL) == SMP_DEVICE_STATE_UNKNOWN);
	CHECK_R(smp_device_is_claimed(NULL), -EINVAL);
	CHECK_R(smp_device_is_claimed_by_me(NULL), -EINVAL);
	CHECK_R(smp_device_get_setpoint(d, (enum smp_param)4, &v), -EINVAL);
	CHECK_R(smp_device_get_setpoint(d, SMP_PARAM_DEPTH, NULL), -EINVAL);
	CHECK_R(smp_device_get_limit(d, (enum smp_param) - 1, SMP_BOUND_MAX, &v, NULL, NULL),
		-EINVAL);
	CHECK_R(smp_device_get_limit(d, SMP_PARAM_DEPTH, (enum smp_bound)2, &v, NULL, NULL), -EINVAL);
	CHECK_R(smp_device_get_limit(NULL, SMP_PARAM_DEPTH, SMP_BOUND_MAX, &v, NULL, NULL), -EINVAL);
	CHECK_R(smp_device_has_cartridge(NULL), -EINVAL);
	CHECK_R(smp_device_get_cartridge_info(NULL, NULL, NULL), -EINVAL);
	CHECK_R(smp_device_is_cartridge_used(NULL), -EINVAL);
	CHECK_R(smp_device_is_cartridge_expired(NULL), -EINVAL);
	CHECK_R(smp_device_refresh(NULL), -EINVAL);
	CHECK_R(smp_device_claim(NULL), -EINVAL);
	CHECK_R(smp_device_release(NULL), -EINVAL);
	CHECK_R(smp_device_set_parameters(NULL, 1, 1, 1, 1), -EINVAL);
	CHECK_R(smp_device_set_parameters(d, SMP_KEEP, SMP_KEEP, SMP_KEEP, SMP_KEEP), -EINVAL);
	CHECK(strstr(smp_device_get_error_message(d), "no parameter"));
	CHECK_R(smp_device_start(NULL), -EINVAL);
	CHECK_R(smp_device_stop(NULL), -EINVAL);
	CHECK_R(smp_device_emergency_stop(NULL), -EINVAL);
	CHECK_R(smp_device_clear_fault(NULL), -EINVAL);
	CHECK_R(smp_device_subscribe_telemetry(NULL, true), -EINVAL);
	CHECK_R(smp_device_get_telemetry(NULL, SMP_TELEMETRY_SAMPLES, &tv), -EINVAL);
	CHECK_R(smp_device_get_telemetry(d, (enum smp_telemetry)16, &tv), -EINVAL);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_SAMPLES, NULL), -EINVAL);
	CHECK_R(smp_device_begin_session(NULL, NULL, NULL), -EINVAL);
	CHECK_R(smp_device_begin_session(d, NULL, NULL), -EINVAL);
	{
		const char *bad1[] = { "NoEquals", NULL };
		const char *bad2[] = { "Color=blue", NULL };
		const char *bad3[] = { "PatchTestTime=yesterday", NULL };

		CHECK_R(smp_device_begin_session(d, bad1, NULL), -EINVAL);
		CHECK(strstr(smp_device_get_error_message(d), "NoEquals"));
		CHECK_R(smp_device_begin_session(d, bad2, NULL), -EINVAL);
		CHECK(strstr(smp_device_get_error_message(d), "Color"));
		CHECK_R(smp_device_begin_session(d, bad3, NULL), -EINVAL);
		CHECK(strstr(smp_device_get_error_message(d), "PatchTestTime"));
	}
	CHECK_R(smp_device_get_error_limit(NULL, NULL, NULL, NULL, NULL, NULL, NULL), -EINVAL);
	CHECK(smp_param_to_string((enum smp_param)4) == NULL);
	CHECK(smp_session_get_id(NULL) == NULL && smp_session_get_device_serial(NULL) == NULL &&
	      smp_session_get_client_pseudonym(NULL) == NULL &&
	      smp_session_get_operator(NULL) == NULL && smp_session_get_zone(NULL) == NULL &&
	      smp_session_get_pigment_lot(NULL) == NULL &&
	      smp_session_get_pigment_manufacturer(NULL) == NULL &&
	      smp_session_get_cartridge_id(NULL) == NULL &&
	      smp_session_get_cartridge_lot(NULL) == NULL && smp_session_get_needle(NULL) == NULL &&
	      smp_session_get_end_reason(NULL) == NULL && smp_session_get_error_name(NULL) == NULL &&
	      smp_session_get_error_message(NULL) == NULL);
	CHECK(smp_session_get_patch_test_time(NULL) == 0 &&
	      smp_session_get_screening_time(NULL) == 0 && smp_session_get_begin_usec(NULL) == 0 &&
	      smp_session_get_end_usec(NULL) == 0 && smp_session_get_needle_on_usec(NULL) == 0);
	CHECK(smp_session_get_max_duration_usec(NULL) == 0 &&
	      smp_session_get_max_needle_on_usec(NULL) == 0);
	CHECK_R(smp_session_is_active(NULL), -EINVAL);
	CHECK_R(smp_session_is_live(NULL), -EINVAL);
	CHECK_R(smp_session_refresh(NULL), -EINVAL);
	CHECK_R(smp_session_change_zone(NULL, "crown"), -EINVAL);
	CHECK_R(smp_session_annotate(NULL, "x"), -EINVAL);
	CHECK_R(smp_session_end(NULL), -EINVAL);
	CHECK_R(smp_log_verify("", NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_R(smp_log_export(NULL, SMP_LOG_FORMAT_JSON, NULL, NULL, 0, 0, NULL), -EINVAL);
	CHECK_R(smp_log_export(NULL, (enum smp_log_format)7, NULL, NULL, 0, 0, stdout), -EINVAL);
	CHECK_R(smp_log_list_sessions(NULL, NULL), -EINVAL);
	CHECK(smp_log_list_sessions("/nonexistent-smp-log", (smp_session ***)&digest) < 0);

	/* a device kept beyond its client is detached, not dangling */
	smp_device_ref(d);
	(void)smp_client_unref(c); /* c is not used again */
	CHECK(smp_device_get_client(d) == NULL);
	CHECK(smp_device_get_state(d) == SMP_DEVICE_STATE_GONE);
	CHECK_R(smp_device_claim(d), -ENOTCONN);
	CHECK(smp_device_get_error_message(d)[0]);
	smp_device_unref(d);
}

/* A whole treatment through every control and session call. */
static void scenario_treatment(const char *pseudonym)
{
	struct counts n = { 0 };
	smp_client *c = connect_client(&n);
	smp_device *d = smp_client_find_device(c, NULL);
	smp_session *s, **list = NULL;
	enum smp_param p;
	enum smp_bound b;
	uint32_t req, lim, max, v;
	const char *layer, *source, *l2, *s2;
	int64_t tv;
	int k;

	CHECK(d);
	smp_device_ref(d);
	/* not claimed yet: the daemon says why */
	CHECK_R(smp_device_start(d), -EPERM);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_NOT_CLAIMED) == 0);
	CHECK(smp_device_get_error_message(d)[0]);

	CHECK_R(smp_device_claim(d), 0);
	CHECK_R(smp_device_is_claimed_by_me(d), 1);
	CHECK(smp_device_get_error_name(d) == NULL);
	CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, 800), -ENOENT); /* no session */
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_NO_SESSION) == 0);

	s = begin(d, pseudonym, "temples");
	CHECK_R(smp_session_is_live(s), 1);
	CHECK_R(smp_session_is_active(s), 1);
	CHECK(strlen(smp_session_get_id(s)) == 32);
	CHECK(strcmp(smp_session_get_client_pseudonym(s), pseudonym) == 0);
	CHECK(strcmp(smp_session_get_operator(s), "op-1") == 0);
	CHECK(strcmp(smp_session_get_zone(s), "temples") == 0);
	CHECK(strcmp(smp_session_get_pigment_lot(s), "PIG-LOT-7") == 0);
	CHECK(strcmp(smp_session_get_pigment_manufacturer(s), "Acme") == 0);
	CHECK(strcmp(smp_session_get_cartridge_id(s), "SIM-CART-0001") == 0);
	CHECK(strcmp(smp_session_get_cartridge_lot(s), "SIM-LOT-0001") == 0);
	CHECK(strcmp(smp_session_get_needle(s), "3RL") == 0);
	CHECK(strcmp(smp_session_get_device_serial(s), "SIM-X2-000001") == 0);
	CHECK(smp_session_get_patch_test_time(s) > 0);
	CHECK(smp_session_get_screening_time(s) == 1700000000);
	CHECK(smp_session_get_begin_usec(s) > 0 && smp_session_get_end_usec(s) == 0);
	/* the shipped policy's session limits (daemon/data/smpd.conf) */
	CHECK(smp_session_get_max_duration_usec(s) == 5 * 3600 * 1000000ULL);
	CHECK(smp_session_get_max_needle_on_usec(s) == 4 * 3600 * 1000000ULL);
	CHECK(strcmp(smp_session_get_end_reason(s), "") == 0);
	CHECK_R(smp_session_refresh(s), 0);
	wait_until(c, &n.begun, 1, 5);
	CHECK(smp_device_get_session(d) == s);

	/* a second session on the same device is refused */
	{
		char patch[64];
		const char *md[] = { "ClientPseudonym=someone-else",
				     "Operator=op-2",
				     "PigmentLot=L",
				     "Zone=crown",
				     patch,
				     NULL };

		snprintf(patch, sizeof(patch), "PatchTestTime=%lld",
			 (long long)time(NULL) - 48 * 3600);
		if (smp_device_begin_session(d, md, NULL) != -EALREADY)
			fprintf(stderr, "%s: %s\n", smp_device_get_error_name(d),
				smp_device_get_error_message(d));
		CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_SESSION_ACTIVE) == 0);
		CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_SESSION_ACTIVE) == 0);
	}

	/* over the limit: refused, with parameter, value, limit and source */
	CHECK_R(smp_device_get_limit(d, SMP_PARAM_DEPTH, SMP_BOUND_MAX, &max, &l2, &s2), 0);
	l2 = strdup(l2); /* borrowed strings live until the next call on the device */
	s2 = strdup(s2);
	CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, max + 200), -ERANGE);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_LIMIT_EXCEEDED) == 0);
	CHECK(strstr(smp_device_get_error_message(d), "exceeds"));
	CHECK_R(smp_device_get_error_limit(d, &p, &b, &req, &lim, &layer, &source), 0);
	CHECK(p == SMP_PARAM_DEPTH && b == SMP_BOUND_MAX && req == max + 200 && lim == max);
	CHECK(strcmp(layer, l2) == 0 && strcmp(source, s2) == 0 && source[0]);
	free((char *)l2);
	free((char *)s2);
	/* the detail survives the library's own refreshes while dispatching */
	k = n.changed;
	CHECK_R(smp_session_change_zone(s, "hairline"), 0); /* the device's Limits change */
	wait_until(c, &n.changed, k + 1, 5);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_LIMIT_EXCEEDED) == 0);
	CHECK_R(smp_device_get_error_limit(d, &p, NULL, &req, NULL, NULL, NULL), 0);
	CHECK(p == SMP_PARAM_DEPTH && req == max + 200);
	CHECK_R(smp_device_set_parameters(d, 100, 1000, 12000, 800), -ERANGE);
	CHECK_R(smp_device_get_error_limit(d, &p, &b, &req, &lim, NULL, NULL), 0);
	CHECK(p == SMP_PARAM_VOLTAGE && b == SMP_BOUND_MIN && req == 100);
	CHECK_R(smp_device_start(d), -ENODATA);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_NO_SETPOINTS) == 0);

	CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, 800), 0);
	CHECK(smp_device_get_error_name(d) == NULL);
	CHECK_R(smp_device_get_error_limit(d, NULL, NULL, NULL, NULL, NULL, NULL), -ENODATA);
	CHECK_R(smp_device_get_setpoint(d, SMP_PARAM_VOLTAGE, &v), 0);
	CHECK(v == 8000);
	CHECK_R(smp_device_get_setpoint(d, SMP_PARAM_DEPTH, &v), 0);
	CHECK(v == 800);
	CHECK_R(smp_device_set_parameters(d, SMP_KEEP, SMP_KEEP, SMP_KEEP, 700), 0);
	CHECK_R(smp_device_get_setpoint(d, SMP_PARAM_DEPTH, &v), 0);
	CHECK(v == 700);
	CHECK_R(smp_device_get_setpoint(d, SMP_PARAM_VOLTAGE, &v), 0);
	CHECK(v == 8000);

	CHECK_R(smp_device_subscribe_telemetry(d, true), 0);
	CHECK_R(smp_device_subscribe_telemetry(d, true), 0);
	CHECK_R(smp_device_start(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_RUNNING, 5);
	poll_until(c, &n.telemetry, n.telemetry + 3, 5);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_VOLTAGE_MV, &tv), 0);
	CHECK(tv > 7000 && tv < 9000);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_STROKE_RATE_CHZ, &tv), 0);
	CHECK(tv > 10000 && tv < 14000);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_SAMPLES, &tv), 0);
	CHECK(tv > 0);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_PEDAL, &tv), 0);
	CHECK(tv == 1);
	CHECK_R(smp_device_get_telemetry(d, SMP_TELEMETRY_CARTRIDGE_PRESENT, &tv), 0);
	CHECK(tv == 1);
	CHECK(n.changed > 0);

	/* zone: crown; a zone whose limits the setpoints exceed is refused */
	CHECK_R(smp_session_change_zone(s, "crown"), 0);
	CHECK(strcmp(smp_session_get_zone(s), "crown") == 0);
	CHECK_R(smp_session_change_zone(s, "no-such-zone"), -EINVAL);
	CHECK(smp_session_get_error_message(s)[0]);
	CHECK_R(smp_session_change_zone(s, NULL), -EINVAL);
	CHECK_R(smp_session_annotate(s, "photos taken"), 0);
	CHECK(smp_session_get_error_name(s) == NULL);
	CHECK_R(smp_session_annotate(s, ""), -EINVAL);
	CHECK_R(smp_session_annotate(s, NULL), -EINVAL);

	CHECK_R(smp_device_subscribe_telemetry(d, false), 0);
	k = n.telemetry;
	CHECK_R(smp_device_stop(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_IDLE, 5);
	{
		double end = now_s() + 0.5;

		while (now_s() < end)
			CHECK_R(smp_client_wait(c, 50000), 0);
	}
	CHECK(n.telemetry == k); /* unsubscribed: no more telemetry events */

	CHECK_R(smp_client_get_sessions(c, &list), 1);
	CHECK(list[0] == s && list[1] == NULL);
	list = smp_session_list_free(list);

	CHECK_R(smp_session_end(s), 0);
	CHECK_R(smp_session_is_active(s), 0);
	CHECK(smp_session_get_end_usec(s) > 0);
	wait_until(c, &n.ended, 1, 5);
	CHECK_R(smp_session_end(s), -ESTALE);
	CHECK(strcmp(smp_session_get_error_name(s), SMP_ERROR_SESSION_ENDED) == 0);
	CHECK_R(smp_session_annotate(s, "late"), -ESTALE);

	CHECK_R(smp_device_release(d), 0);
	CHECK_R(smp_device_is_claimed_by_me(d), 0);
	CHECK_R(smp_device_release(d), -EPERM);
	smp_session_unref(s);
	smp_device_unref(d);
	smp_client_unref(c);
	printf("session ok\n");
}

/* Faults, emergency stop from a second client, claim conflicts. */
static void scenario_faults(const char *pseudonym)
{
	struct counts n = { 0 }, n2 = { 0 };
	smp_client *c = connect_client(&n), *other = connect_client(&n2);
	smp_device *d = smp_client_find_device(c, NULL), *d2 = smp_client_find_device(other, NULL);
	smp_session *s;

	CHECK(d && d2);
	CHECK_R(smp_device_claim(d), 0);
	CHECK_R(smp_device_claim(d2), -EBUSY);
	CHECK(strcmp(smp_device_get_error_name(d2), SMP_ERROR_ALREADY_CLAIMED) == 0);
	s = begin(d, pseudonym, "crown");
	CHECK_R(smp_device_set_parameters(d2, 8000, 1000, 12000, 800), -EPERM);
	CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, 800), 0);
	CHECK_R(smp_device_start(d2), -EPERM);
	CHECK_R(smp_device_start(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_RUNNING, 5);

	/* brown-out: smpd stops the needle and latches the fault */
	sim("brownout 7500"); /* 500 mV under the setpoint: the device tolerates it, smpd not */
	wait_until(c, &n.fault, 1, 10);
	if (strcmp(n.fault_kind, "brownout") != 0)
		fprintf(stderr, "fault kind %s: %s\n", n.fault_kind, smp_device_get_fault_message(d));
	CHECK(strcmp(n.fault_kind, "brownout") == 0);
	wait_state(c, d, SMP_DEVICE_STATE_FAULT, 5);
	CHECK(strcmp(smp_device_get_fault_kind(d), "brownout") == 0);
	CHECK(smp_device_get_fault_message(d)[0]);
	CHECK_R(smp_device_start(d), -ENOTRECOVERABLE);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_FAULT_LATCHED) == 0);
	sim("brownout off");
	CHECK_R(smp_device_clear_fault(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_IDLE, 5);

	/* emergency stop works from any client, claim or not, and latches */
	CHECK_R(smp_device_start(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_RUNNING, 5);
	CHECK_R(smp_device_emergency_stop(d2), 0);
	wait_state(c, d, SMP_DEVICE_STATE_ESTOP, 5);
	CHECK_R(smp_device_start(d), -ENOTRECOVERABLE);
	CHECK_R(smp_device_clear_fault(d2), -EPERM); /* claimed by c */
	CHECK_R(smp_device_clear_fault(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_IDLE, 5);

	/* the claimant leaves the bus: the session ends, the claim is free */
	smp_session_unref(s);
	CHECK_R(smp_device_start(d), 0);
	wait_state(other, d2, SMP_DEVICE_STATE_RUNNING, 5);
	(void)smp_client_unref(c); /* c is not used again */
	wait_state(other, d2, SMP_DEVICE_STATE_IDLE, 5);
	{
		double end = now_s() + 5;

		while (smp_device_is_claimed(d2) && now_s() < end)
			CHECK_R(smp_client_wait(other, 50000), 0);
	}
	CHECK_R(smp_device_is_claimed(d2), 0);
	CHECK_R(smp_device_claim(d2), 0);
	smp_client_unref(other);
	printf("faults ok\n");
}

/*
 * A change smpd announces is taken from the PropertiesChanged signal, with
 * no method call back to smpd inside the dispatch (the dispatch also sends
 * the claimant's Heartbeat): smpd is frozen (SIGSTOP) while the signal of a
 * Stop waits to be dispatched, and the dispatch still returns at once with
 * the new state.  Reading the device back (GetAll) would wait for the
 * method timeout instead, and leave the state at running.
 */
static void scenario_signal_values(const char *pseudonym, pid_t smpd)
{
	struct counts n = { 0 };
	smp_client *c = connect_client(&n);
	smp_device *d = smp_client_find_device(c, NULL);
	smp_session *s;
	double t0, took;
	int changed;

	CHECK(d && smpd > 1);
	CHECK_R(smp_device_claim(d), 0);
	s = begin(d, pseudonym, "crown");
	CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, 800), 0);
	CHECK_R(smp_device_start(d), 0);
	wait_state(c, d, SMP_DEVICE_STATE_RUNNING, 5);
	CHECK_R(smp_client_set_method_timeout(c, 3 * 1000000ULL), 0);
	CHECK_R(smp_device_stop(d), 0);
	usleep((useconds_t)(300000 * slow)); /* smpd (real time) has sent the signal */
	changed = n.changed;
	CHECK(smp_device_get_state(d) == SMP_DEVICE_STATE_RUNNING);
	CHECK(kill(smpd, SIGSTOP) == 0);
	t0 = now_s();
	(void)smp_client_dispatch(c);
	took = now_s() - t0;
	CHECK(kill(smpd, SIGCONT) == 0);
	fprintf(stderr, "dispatch with smpd stopped: %.3f s, state %s\n", took,
		smp_device_state_to_string(smp_device_get_state(d)));
	CHECK(took < 1.0);
	CHECK(smp_device_get_state(d) == SMP_DEVICE_STATE_IDLE);
	CHECK(n.changed > changed);
	CHECK_R(smp_client_set_method_timeout(c, 20 * 1000000ULL), 0);
	CHECK_R(smp_session_end(s), 0);
	CHECK_R(smp_device_release(d), 0);
	smp_session_unref(s);
	smp_client_unref(c);
	printf("signal values ok\n");
}

/* Session time (policy: 12 s, warning 6 s before): warned, then stopped. */
static void scenario_session_time(const char *pseudonym)
{
	struct counts n = { 0 };
	smp_client *c = connect_client(&n);
	smp_device *d = smp_client_find_device(c, NULL);
	smp_session *s;

	CHECK(d);
	CHECK_R(smp_device_claim(d), 0);
	s = begin(d, pseudonym, "crown");
	CHECK(smp_session_get_max_duration_usec(s) == 12 * 1000000ULL); /* the drop-in's */
	CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, 800), 0);
	CHECK_R(smp_device_start(d), 0);
	wait_until(c, &n.warning, 1, 15);
	CHECK(strcmp(n.warning_kind, "session-time") == 0 && n.seconds_left == 6);
	CHECK(smp_device_get_state(d) == SMP_DEVICE_STATE_RUNNING);
	wait_until(c, &n.fault, 1, 15);
	CHECK(strcmp(n.fault_kind, "session-time") == 0);
	wait_state(c, d, SMP_DEVICE_STATE_FAULT, 5);
	CHECK_R(smp_device_clear_fault(d), 0);
	CHECK_R(smp_device_start(d), -ETIMEDOUT);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_SESSION_LIMIT) == 0);
	smp_session_unref(s);
	smp_client_unref(c);
	printf("session time ok\n");
}

/* Polkit denies everything (set up by the caller): named errors, no crash. */
static void scenario_denied(void)
{
	smp_client *c = connect_client(NULL);
	smp_device *d = smp_client_find_device(c, NULL);

	CHECK(d);
	CHECK_R(smp_device_claim(d), -EACCES);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_NOT_AUTHORIZED) == 0);
	CHECK(smp_device_get_error_message(d)[0]);
	CHECK_R(smp_client_reload(c), -EACCES);
	CHECK(strcmp(smp_client_get_error_name(c), SMP_ERROR_NOT_AUTHORIZED) == 0);
	smp_client_unref(c);
	printf("denied ok\n");
}

/* smpd restarts under a connected client: seen, and recovered from. */
static void scenario_restart(const char *pseudonym)
{
	struct counts n = { 0 };
	smp_client *c = connect_client(&n);
	smp_device *d = smp_client_find_device(c, NULL), *d2;
	smp_session *s;

	CHECK(d);
	smp_device_ref(d);
	CHECK_R(smp_device_claim(d), 0);
	s = begin(d, pseudonym, "hairline");
	printf("READY\n");
	fflush(stdout);
	/* the harness kills smpd now */
	wait_until(c, &n.lost, 1, 30);
	CHECK(n.removed == 1);
	CHECK(smp_device_get_state(d) == SMP_DEVICE_STATE_GONE);
	CHECK_R(smp_device_is_claimed_by_me(d), 0);
	CHECK_R(smp_session_is_active(s), 0);
	CHECK(n.ended == 1 && strstr(n.end_reason, "smpd"));
	CHECK_R(smp_device_start(d), -ENODEV);
	CHECK(smp_client_get_n_devices(c) == 0);
	CHECK_R(smp_client_is_daemon_running(c), 0);
	CHECK_R(smp_client_get_api_version(c, &(uint32_t){ 0 }), -ENOTCONN);
	CHECK(strstr(smp_client_get_error_message(c), "not running"));
	printf("LOST\n");
	fflush(stdout);
	/* the harness starts smpd again now */
	wait_until(c, &n.appeared, 1, 30);
	wait_until(c, &n.added, 1, 30);
	CHECK_R(smp_client_is_daemon_running(c), 1);
	d2 = smp_client_find_device(c, NULL);
	CHECK(d2 && d2 != d);
	CHECK_R(smp_device_claim(d2), 0);
	smp_session_unref(s);
	smp_device_unref(d);
	smp_client_unref(c);
	printf("restart ok\n");
}

/* The system and user bus constructors (the harness points both at the test bus). */
static void scenario_env_buses(void)
{
	smp_client *c = NULL;

	CHECK_R(smp_client_new(&c), 0);
	CHECK_R(smp_client_is_daemon_running(c), 1);
	CHECK(smp_client_get_n_devices(c) == 1);
	c = smp_client_unref(c);
	CHECK_R(smp_client_new_user(&c), 0);
	CHECK_R(smp_client_is_daemon_running(c), 1);
	c = smp_client_unref(c);
	printf("env buses ok\n");
}

/* The bus itself goes away: DISCONNECTED, then -ENOTCONN everywhere. */
static void scenario_disconnect(void)
{
	struct counts n = { 0 };
	smp_client *c = connect_client(&n);
	uint64_t t;

	printf("READY\n");
	fflush(stdout);
	/* the harness kills the dbus-daemon now */
	{
		double end = now_s() + 30 * slow;
		int r = 0;

		while (n.disconnected == 0 && now_s() < end) {
			r = smp_client_wait(c, 100000);
			if (r < 0)
				break;
		}
		CHECK_R(r, -ENOTCONN);
	}
	CHECK(n.disconnected == 1);
	CHECK_R(smp_client_dispatch(c), -ENOTCONN);
	CHECK_R(smp_client_wait(c, 1000), -ENOTCONN);
	CHECK_R(smp_client_get_fd(c), -ENOTCONN);
	CHECK_R(smp_client_get_events(c), -ENOTCONN);
	CHECK_R(smp_client_get_timeout(c, &t), -ENOTCONN);
	CHECK_R(smp_client_is_daemon_running(c), -ENOTCONN);
	CHECK_R(smp_client_reload(c), -ENOTCONN);
	CHECK(smp_client_get_n_devices(c) == 0);
	smp_client_unref(c);
	printf("disconnect ok\n");
}

/* Connect/disconnect cycles for valgrind: every object freed every time. */
static void scenario_cycles(int cycles)
{
	for (int i = 0; i < cycles; i++) {
		struct counts n = { 0 };
		smp_client *c = connect_client(&n);
		smp_device *d = smp_client_find_device(c, NULL);
		smp_session **list = NULL;

		CHECK(d);
		CHECK_R(smp_device_refresh(d), 0);
		CHECK_R(smp_device_subscribe_telemetry(d, true), 0);
		CHECK_R(smp_client_wait(c, 20000), 0);
		CHECK(smp_client_get_sessions(c, &list) >= 0);
		smp_session_list_free(list);
		if (i % 2) /* an application keeping a device and a session past its client */
			smp_device_ref(d);
		CHECK_R(smp_device_claim(d), 0);
		CHECK_R(smp_device_set_parameters(d, 8000, 1000, 12000, 800), -ENOENT);
		smp_client_unref(c);
		if (i % 2) {
			CHECK_R(smp_device_refresh(d), -ENOTCONN);
			smp_device_unref(d);
		}
	}
	printf("cycles ok\n");
}

/* The audit log of the sessions run so far, read directly. */
static void scenario_log(const char *dir, const char *key, const char *session_id)
{
	smp_session **list = NULL;
	char *desc = NULL;
	FILE *f;
	char *buf = NULL;
	size_t sz = 0;
	int64_t k;
	int n, found = 0;

	n = smp_log_list_sessions(dir, &list);
	CHECK(n >= 1);
	for (int i = 0; i < n; i++) {
		CHECK_R(smp_session_is_live(list[i]), 0);
		CHECK_R(smp_session_refresh(list[i]), -EOPNOTSUPP);
		CHECK_R(smp_session_end(list[i]), -EOPNOTSUPP);
		if (strcmp(smp_session_get_id(list[i]), session_id) == 0) {
			found = 1;
			CHECK(strcmp(smp_session_get_pigment_lot(list[i]), "PIG-LOT-7") == 0);
			CHECK(strcmp(smp_session_get_zone(list[i]), "crown") == 0); /* after ChangeZone */
			CHECK_R(smp_session_is_active(list[i]), 0);
			CHECK(smp_session_get_end_usec(list[i]) >=
			      smp_session_get_begin_usec(list[i]));
		}
	}
	CHECK(found);
	smp_session_list_free(list);

	f = open_memstream(&buf, &sz);
	CHECK(f);
	k = smp_log_export(dir, SMP_LOG_FORMAT_JSON, session_id, NULL, 0, 0, f);
	fclose(f);
	CHECK(k >= 3); /* begin, parameters, ..., end */
	CHECK(strstr(buf, "session_begin") && strstr(buf, "session_end") && strstr(buf, session_id));
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &sz);
	k = smp_log_export(dir, SMP_LOG_FORMAT_CSV, "no-such-session", NULL, 0, 0, f);
	fclose(f);
	CHECK(k == 0);
	free(buf);

	CHECK_R(smp_log_verify(dir, key, NULL, NULL, &desc), SMP_LOG_INTACT);
	CHECK(strstr(desc, "intact"));
	free(desc);
	CHECK_R(smp_log_verify(dir, NULL, NULL, NULL, &desc), SMP_LOG_UNVERIFIABLE);
	free(desc);
	CHECK_R(smp_log_verify(dir, "not-a-key", NULL, NULL, NULL), -EINVAL);
	printf("log ok\n");
}

/* The cartridge pulled and another inserted, read by smpd (its Cartridge property). */
static void swap_cartridge(smp_client *c, smp_device *d, const char *id)
{
	char cmd[256];
	double end = now_s() + 5 * slow;

	sim("cartridge pull");
	while (smp_device_has_cartridge(d) != 0) {
		CHECK(now_s() < end);
		CHECK_R(smp_client_wait(c, 50000), 0);
	}
	snprintf(cmd, sizeof(cmd),
		 "cartridge insert id=%s lot=L used=0 needle=3RL diameter=250 expiry=2099-01-01", id);
	sim(cmd);
	while (smp_device_has_cartridge(d) != 1 || !smp_device_get_cartridge_id(d) ||
	       strcmp(smp_device_get_cartridge_id(d), id) != 0) {
		CHECK(now_s() < end);
		CHECK_R(smp_client_wait(c, 50000), 0);
	}
}

/* smp_device_check_session(): what BeginSession would refuse, before it. */
static void scenario_check_session(const char *client)
{
	smp_client *c = connect_client(NULL), *owner = connect_client(NULL);
	smp_device *d, *od;
	smp_refusal **list = NULL;
	smp_session *s;
	char md_client[128], md_patch[64];
	const char *md[] = { md_client,	   "Operator=op-1",
			     "Zone=crown", "PigmentLot=PIG-LOT-7",
			     md_patch,	   NULL };
	const char *no_lot[] = { md_client, "Operator=op-1", "Zone=crown", NULL };
	const char *bad[] = { md_client, "Operator=op-1", "Zone=neck", "PigmentLot=P", NULL };
	int64_t t0 = (int64_t)time(NULL);

	snprintf(md_client, sizeof(md_client), "ClientPseudonym=%s", client);
	snprintf(md_patch, sizeof(md_patch), "PatchTestTime=%lld", (long long)t0 - 48 * 3600);
	CHECK_R(smp_client_get_n_devices(c), 1);
	d = smp_client_get_device(c, 0);
	od = smp_client_get_device(owner, 0);

	CHECK_R(smp_device_check_session(NULL, md, &list), -EINVAL);
	CHECK_R(smp_device_check_session(d, NULL, &list), -EINVAL);
	CHECK_R(smp_device_check_session(d, md, NULL), -EINVAL);
	CHECK(smp_refusal_get_error_name(NULL) == NULL && !smp_refusal_is_overridable(NULL));
	CHECK(smp_refusal_list_free(NULL) == NULL);

	/* no refusal, without a claim */
	CHECK_R(smp_device_check_session(d, md, &list), 0);
	CHECK(list && list[0] == NULL);
	list = smp_refusal_list_free(list);

	/* two at once, in BeginSession's order, with its names */
	CHECK_R(smp_device_check_session(d, no_lot, &list), 2);
	CHECK(strcmp(smp_refusal_get_error_name(list[0]), SMP_ERROR_NO_PIGMENT_LOT) == 0);
	CHECK(strcmp(smp_refusal_get_error_name(list[1]), SMP_ERROR_PATCH_TEST) == 0);
	CHECK(strstr(smp_refusal_get_message(list[1]), "none was given"));
	CHECK(list[2] == NULL && !smp_refusal_is_overridable(list[1]));
	CHECK(smp_refusal_get_earliest_time(list[1]) == 0);
	list = smp_refusal_list_free(list);

	/* malformed: the call's error, as for BeginSession */
	CHECK_R(smp_device_check_session(d, bad, &list), -EINVAL);
	CHECK(strcmp(smp_device_get_error_name(d), SMP_ERROR_INVALID_ARGUMENT) == 0);
	CHECK(strstr(smp_device_get_error_message(d), "unknown zone"));

	/* the healing interval: last session, earliest time, overridable */
	CHECK_R(smp_device_claim(od), 0);
	CHECK_R(smp_device_begin_session(od, md, &s), 0);
	CHECK_R(smp_session_end(s), 0);
	smp_session_unref(s);
	swap_cartridge(c, d, "CHECK-2");
	CHECK_R(smp_device_check_session(d, md, &list), 1);
	CHECK(strcmp(smp_refusal_get_error_name(list[0]), SMP_ERROR_HEALING_INTERVAL) == 0);
	CHECK(strstr(smp_refusal_get_message(list[0]), "healing interval is 10 days"));
	CHECK(smp_refusal_is_overridable(list[0]));
	CHECK(smp_refusal_get_last_session_time(list[0]) >= t0 - 2 &&
	      smp_refusal_get_last_session_time(list[0]) <= (int64_t)time(NULL));
	CHECK(smp_refusal_get_earliest_time(list[0]) ==
	      smp_refusal_get_last_session_time(list[0]) + 10 * 86400);
	/* BeginSession refuses the same, with the same sentence */
	CHECK_R(smp_device_begin_session(od, md, NULL), -ETIME);
	CHECK(strcmp(smp_device_get_error_message(od), smp_refusal_get_message(list[0])) == 0);
	list = smp_refusal_list_free(list);
	smp_client_unref(owner);
	smp_client_unref(c);
	printf("check-session ok\n");
}

/*
 * Interactive authorization (smp_client_set_interactive_authorization()):
 * a claim and a session begun with an override, with the flag on ("on") or
 * not ("off"), the method timeout at timeout_ms.  The harness reads the
 * flags smpd gave polkit from the mock's call log, and slows the mock down
 * to stand for a person at the prompt: "ok" wants every call to succeed,
 * "timeout" the claim to give up after the method timeout.
 */
static void scenario_interactive(const char *client, const char *mode, long timeout_ms,
				 const char *expect)
{
	smp_client *c = connect_client(NULL);
	smp_device *d = smp_client_find_device(c, NULL);
	char md_client[128], md_patch[64];
	const char *md[] = { md_client,
			     "Operator=op-1",
			     "Zone=crown",
			     "PigmentLot=PIG-LOT-7",
			     "PigmentManufacturer=Acme",
			     md_patch,
			     "ScreeningTime=1700000000",
			     "OverrideReason=prompt test",
			     NULL };
	smp_session *s = NULL;

	CHECK(d);
	CHECK_R(smp_client_set_interactive_authorization(NULL, true), -EINVAL);
	CHECK_R(smp_client_set_interactive_authorization(c, true), 0);
	CHECK_R(smp_client_set_interactive_authorization(c, strcmp(mode, "on") == 0), 0);
	CHECK_R(smp_client_set_method_timeout(c, (uint64_t)timeout_ms * 1000), 0);
	if (strcmp(expect, "timeout") == 0) {
		CHECK_R(smp_device_claim(d), -ETIMEDOUT);
		smp_client_unref(c);
		printf("interactive timeout ok\n");
		return;
	}
	snprintf(md_client, sizeof(md_client), "ClientPseudonym=%s", client);
	snprintf(md_patch, sizeof(md_patch), "PatchTestTime=%lld", (long long)time(NULL) - 48 * 3600);
	/* a new cartridge for each run */
	swap_cartridge(c, d, strcmp(mode, "on") == 0 ? "PROMPT-ON" : "PROMPT-OFF");
	CHECK_R(smp_device_claim(d), 0);
	CHECK_R(smp_device_begin_session(d, md, &s), 0);
	CHECK(s);
	CHECK_R(smp_session_end(s), 0);
	smp_session_unref(s);
	CHECK_R(smp_device_release(d), 0);
	smp_client_unref(c);
	printf("interactive ok\n");
}

int main(int argc, char **argv)
{
	const char *scenario, *wrapper;

	if (argc < 3) {
		fprintf(stderr, "usage: %s BUS_ADDRESS SCENARIO [SIM_CONTROL] [ARG...]\n", argv[0]);
		return 2;
	}
	bus_address = argv[1];
	wrapper = getenv("SMP_TEST_WRAPPER");
	if (wrapper && wrapper[0])
		slow = 5;
	scenario = argv[2];
	sim_ctl = argc > 3 ? argv[3] : NULL;
	if (strcmp(scenario, "basics") == 0)
		scenario_basics();
	else if (strcmp(scenario, "treatment") == 0 && argc > 4)
		scenario_treatment(argv[4]);
	else if (strcmp(scenario, "faults") == 0 && argc > 4)
		scenario_faults(argv[4]);
	else if (strcmp(scenario, "session-time") == 0 && argc > 4)
		scenario_session_time(argv[4]);
	else if (strcmp(scenario, "signal-values") == 0 && argc > 5)
		scenario_signal_values(argv[4], (pid_t)atoi(argv[5]));
	else if (strcmp(scenario, "denied") == 0)
		scenario_denied();
	else if (strcmp(scenario, "restart") == 0 && argc > 4)
		scenario_restart(argv[4]);
	else if (strcmp(scenario, "check-session") == 0 && argc > 4)
		scenario_check_session(argv[4]);
	else if (strcmp(scenario, "interactive") == 0 && argc > 7)
		scenario_interactive(argv[4], argv[5], atol(argv[6]), argv[7]);
	else if (strcmp(scenario, "env-buses") == 0)
		scenario_env_buses();
	else if (strcmp(scenario, "disconnect") == 0)
		scenario_disconnect();
	else if (strcmp(scenario, "cycles") == 0 && argc > 4)
		scenario_cycles(atoi(argv[4]));
	else if (strcmp(scenario, "log") == 0 && argc > 6)
		scenario_log(argv[4], argv[5], argv[6]);
	else {
		fprintf(stderr, "unknown scenario or missing argument: %s\n", scenario);
		return 2;
	}
	return 0;
}
