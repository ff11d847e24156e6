/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one reading of sessions (issue 15): a log that holds every kind of
 * session (ended with a zone change, aborted, stopped with smpd in order
 * with and without an end record, cut off by a crash, open) reads as
 * docs/audit-log.md "Sessions" says, filters by client, pigment lot and
 * cartridge, and writes as JSON and CSV.
 *
 * `test-audit-sessions --generate DIR` writes that log into DIR (for the
 * integration test tests/daemon/test_records.py, which then starts smpd on
 * it and checks that every consumer reads the same).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include "../cmocka-analyzer.h"

#include "audit-log.h"
#include "audit-sessions.h"

#define ID(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static int begin(struct audit_log *log, const char *id, const char *client, const char *zone,
		 const char *lot, const char *cart, const char *cart_lot, int64_t patch_test)
{
	struct audit_field f[] = {
		AUDIT_STR("session", id),
		AUDIT_STR("device", "GEN-DEV-1"),
		AUDIT_STR("client", client),
		AUDIT_STR("operator", "op-gen"),
		AUDIT_STR("zone", zone),
		AUDIT_STR("pigment_lot", lot),
		AUDIT_STR("pigment_manufacturer", "Maker, Inc."),
		AUDIT_STR("cartridge", cart),
		AUDIT_STR("cartridge_lot", cart_lot),
		AUDIT_STR("needle", "1RL"),
		AUDIT_INT("patch_test_time", patch_test),
		AUDIT_INT("screening_time", 0),
	};

	return audit_log_append_durable(log, "session_begin", f, sizeof(f) / sizeof(f[0]), NULL);
}

static int event3(struct audit_log *log, const char *event, const char *id, const char *k,
		  const char *v)
{
	struct audit_field f[] = {
		AUDIT_STR("session", id),
		AUDIT_STR(k, v),
		AUDIT_UINT("needle_on_ms", 1234),
	};

	return audit_log_append_durable(log, event, f, 3, NULL);
}

static int plain(struct audit_log *log, const char *event)
{
	struct audit_field f[] = { AUDIT_STR("version", "test") };

	return audit_log_append_durable(log, event, f, 1, NULL);
}

/* A: ended by the client after a zone change; B: aborted; C: open when
 * smpd stopped in order (no end record: an old smpd); D: ended by a
 * daemon-stopped record; E: open when the log was last left without a
 * close (a crash).  The log is left as a crash left it. */
static int generate(const char *dir)
{
	struct audit_log *log = NULL;
	char *key = NULL;
	int r;

	r = audit_log_setup(dir, NULL, &key);
	free(key);
	if (r >= 0)
		r = audit_log_open(dir, NULL, &log);
	if (r < 0)
		return r;
	if ((r = plain(log, "daemon_start")) < 0 ||
	    (r = begin(log, ID("a"), "client-a", "temples", "LOT-X", "CART-A", "CL-1", -31536000)) <
		    0 ||
	    (r = event3(log, "zone_change", ID("a"), "zone", "crown")) < 0 ||
	    (r = event3(log, "session_end", ID("a"), "reason", "ended by the client")) < 0 ||
	    (r = begin(log, ID("b"), "client-b", "hairline", "LOT-Y", "CART-B", "CL-1", 0)) < 0 ||
	    (r = event3(log, "session_aborted", ID("b"), "reason", "cannot mark the cartridge")) < 0 ||
	    (r = begin(log, ID("c"), "client-c", "scar", "LOT-X", "CART-C", "CL-2", 0)) < 0 ||
	    (r = plain(log, "daemon_stop")) < 0)
		goto fail;
	r = audit_log_close(log);
	log = NULL;
	if (r < 0)
		return r;
	r = audit_log_open(dir, NULL, &log);
	if (r < 0)
		return r;
	if ((r = plain(log, "daemon_start")) < 0 ||
	    (r = begin(log, ID("d"), "client-d", "crown", "LOT-Y", "CART-D", "CL-2", 0)) < 0 ||
	    (r = event3(log, "session_end", ID("d"), "reason", AUDIT_REASON_DAEMON_STOPPED)) < 0 ||
	    (r = begin(log, ID("e"), "client-e", "temples", "LOT-X", "CART-E", "CL-3", 0)) < 0)
		goto fail;
fail:
	audit_log_free(log); /* no close record: a crash */
	return r < 0 ? r : 0;
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/test-audit-sessions-XXXXXX";
	char *d = mkdtemp(tmpl), *dir;

	assert_non_null(d);
	assert_int_equal(asprintf(&dir, "%s/log", d), (int)strlen(d) + 4);
	return dir;
}

static void rm_dir(char *dir)
{
	char *cmd;

	*strrchr(dir, '/') = '\0'; /* the mkdtemp() directory */
	assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

static void test_every_kind(void **state)
{
	char *dir = make_dir();
	struct audit_session *s;
	size_t n;

	assert_int_equal(generate(dir), 0);
	assert_int_equal(audit_sessions_read(dir, NULL, &s, &n), 0);
	assert_int_equal(n, 5);

	assert_string_equal(s[0].id, ID("a"));
	assert_int_equal(s[0].state, AUDIT_SESSION_ENDED);
	assert_string_equal(s[0].end_reason, "ended by the client");
	assert_string_equal(s[0].zone, "temples");
	assert_string_equal(s[0].zones, "temples,crown");
	assert_int_equal(s[0].needle_on_ms, 1234);
	assert_int_equal(s[0].patch_test_time, -31536000); /* 1969: a date */
	assert_string_equal(s[0].pigment_manufacturer, "Maker, Inc.");
	assert_false(s[0].end_inferred);
	assert_true(s[0].end_usec >= s[0].begin_usec && s[0].end_seq > s[0].begin_seq);

	assert_int_equal(s[1].state, AUDIT_SESSION_ABORTED);
	assert_string_equal(s[1].end_reason, "cannot mark the cartridge");

	assert_int_equal(s[2].state, AUDIT_SESSION_DAEMON_STOPPED);
	assert_string_equal(s[2].end_reason, AUDIT_REASON_DAEMON_STOPPED);
	assert_true(s[2].end_inferred);

	assert_int_equal(s[3].state, AUDIT_SESSION_DAEMON_STOPPED);
	assert_false(s[3].end_inferred);

	/* E: the log ends with it open; the crash is seen at the next open */
	assert_int_equal(s[4].state, AUDIT_SESSION_OPEN);
	assert_int_equal(s[4].end_usec, 0);
	assert_string_equal(s[4].end_reason, "");
	audit_sessions_free(s, n);

	{
		struct audit_log *log;

		assert_int_equal(audit_log_open(dir, NULL, &log), 0);
		assert_int_equal(audit_log_close(log), 0);
	}
	assert_int_equal(audit_sessions_read(dir, NULL, &s, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(s[4].state, AUDIT_SESSION_DAEMON_CRASHED);
	assert_string_equal(s[4].end_reason, AUDIT_REASON_DAEMON_CRASHED);
	assert_true(s[4].end_inferred);
	audit_sessions_free(s, n);
	rm_dir(dir);
}

static void test_filters(void **state)
{
	char *dir = make_dir();
	struct audit_session *s;
	struct audit_session_filter f = { .pigment_lot = "LOT-X" };
	size_t n;

	assert_int_equal(generate(dir), 0);
	assert_int_equal(audit_sessions_read(dir, &f, &s, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(s[0].client, "client-a");
	assert_string_equal(s[1].client, "client-c");
	assert_string_equal(s[2].client, "client-e");
	audit_sessions_free(s, n);

	f = (struct audit_session_filter){ .cartridge_lot = "CL-2" };
	assert_int_equal(audit_sessions_read(dir, &f, &s, &n), 0);
	assert_int_equal(n, 2);
	audit_sessions_free(s, n);

	f = (struct audit_session_filter){ .cartridge = "CART-D", .client = "client-d" };
	assert_int_equal(audit_sessions_read(dir, &f, &s, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(s[0].id, ID("d"));
	audit_sessions_free(s, n);

	f = (struct audit_session_filter){ .pigment_lot = "NO-SUCH-LOT" };
	assert_int_equal(audit_sessions_read(dir, &f, &s, &n), 0);
	assert_int_equal(n, 0);
	assert_null(s);

	assert_int_equal(audit_sessions_read(dir, NULL, NULL, &n), -EINVAL);
	assert_int_equal(audit_sessions_read("/nonexistent-dir", NULL, &s, &n), -ENOENT);
	rm_dir(dir);
}

static void test_write(void **state)
{
	char *dir = make_dir(), *buf = NULL;
	struct audit_session *s;
	size_t n, sz = 0;
	FILE *out;

	assert_int_equal(generate(dir), 0);
	assert_int_equal(audit_sessions_read(dir, NULL, &s, &n), 0);
	out = open_memstream(&buf, &sz);
	assert_non_null(out);
	assert_int_equal(audit_sessions_write(s, n, AUDIT_SESSIONS_CSV, out), 0);
	fclose(out);
	/* header, then quoted cells where RFC 4180 needs them */
	assert_true(strncmp(buf, "session,state,begin,end,client,", 31) == 0);
	assert_non_null(strstr(buf, ",\"temples,crown\","));
	assert_non_null(strstr(buf, ",\"Maker, Inc.\","));
	assert_non_null(strstr(buf, ",1969-01-01T00:00:00Z,"));
	free(buf);

	out = open_memstream(&buf, &sz);
	assert_non_null(out);
	assert_int_equal(audit_sessions_write(s, n, AUDIT_SESSIONS_JSON, out), 0);
	fclose(out);
	assert_non_null(strstr(buf, "\"state\":\"aborted\""));
	assert_non_null(strstr(buf, "\"patch_test_time\":-31536000"));
	free(buf);
	audit_sessions_free(s, n);
	rm_dir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_write),
	};

	if (argc == 3 && strcmp(argv[1], "--generate") == 0) {
		int r = generate(argv[2]);

		if (r < 0)
			fprintf(stderr, "test-audit-sessions: cannot write %s: %s\n", argv[2],
				strerror(-r));
		return r < 0 ? 1 : 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
