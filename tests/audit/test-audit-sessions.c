/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one reading of sessions (issue 15): a log that holds every kind of
 * session (ended with a zone change, aborted, stopped with smpd in order
 * with and without an end record, cut off by a crash, open) reads as
 * docs/audit-log.md "Sessions" says, filters by client, pigment lot and
 * cartridge, and writes as JSON and CSV.
 *
 * The reading of a log that verifies (audit_sessions_read_verified()): the
 * same sessions as the plain reading of an intact log, in one pass, also of
 * a log of several large files; from a log that does not verify, no
 * sessions and audit_verify()'s own verdict, wherever the damage is.
 *
 * `test-audit-sessions --generate DIR` writes that log into DIR (for the
 * integration test tests/daemon/test_records.py, which then starts smpd on
 * it and checks that every consumer reads the same).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include "../cmocka-analyzer.h"

#include "audit-internal.h"
#include "audit-log.h"
#include "audit-sessions.h"

/* records without a sync each (the large logs of test_verified) */
static bool gen_fast;

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

	return gen_fast ? audit_log_append(log, "session_begin", f, sizeof(f) / sizeof(f[0]), NULL) :
			  audit_log_append_durable(log, "session_begin", f,
						   sizeof(f) / sizeof(f[0]), NULL);
}

static int event3(struct audit_log *log, const char *event, const char *id, const char *k,
		  const char *v)
{
	struct audit_field f[] = {
		AUDIT_STR("session", id),
		AUDIT_STR(k, v),
		AUDIT_UINT("needle_on_ms", 1234),
	};

	return gen_fast ? audit_log_append(log, event, f, 3, NULL) :
			  audit_log_append_durable(log, event, f, 3, NULL);
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
static int generate_key(const char *dir, char **ret_key)
{
	struct audit_log *log = NULL;
	char *key = NULL;
	int r;

	r = audit_log_setup(dir, NULL, &key);
	if (ret_key)
		*ret_key = key;
	else
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

static int generate(const char *dir)
{
	return generate_key(dir, NULL);
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

/* ---- the reading of a log that verifies -------------------------------------- */

static void assert_same_sessions(const struct audit_session *a, size_t na,
				 const struct audit_session *b, size_t nb)
{
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_string_equal(a[i].id, b[i].id);
		assert_int_equal(a[i].state, b[i].state);
		assert_string_equal(a[i].client, b[i].client);
		assert_string_equal(a[i].operator_name, b[i].operator_name);
		assert_string_equal(a[i].device, b[i].device);
		assert_string_equal(a[i].zones, b[i].zones);
		assert_string_equal(a[i].pigment_lot, b[i].pigment_lot);
		assert_string_equal(a[i].pigment_manufacturer, b[i].pigment_manufacturer);
		assert_string_equal(a[i].cartridge, b[i].cartridge);
		assert_string_equal(a[i].cartridge_lot, b[i].cartridge_lot);
		assert_string_equal(a[i].end_reason, b[i].end_reason);
		assert_int_equal(a[i].begin_usec, b[i].begin_usec);
		assert_int_equal(a[i].end_usec, b[i].end_usec);
		assert_int_equal(a[i].begin_seq, b[i].begin_seq);
		assert_int_equal(a[i].end_seq, b[i].end_seq);
		assert_int_equal(a[i].needle_on_ms, b[i].needle_on_ms);
		assert_int_equal(a[i].patch_test_time, b[i].patch_test_time);
		assert_int_equal(a[i].end_inferred, b[i].end_inferred);
	}
}

/* The verified reading of dir equals audit_verify() + audit_sessions_read()
 * when intact; otherwise audit_verify()'s verdict and no sessions.  Returns
 * the status. */
static enum audit_verify_status check_verified(const char *dir, const char *key,
					       const struct audit_session_filter *f)
{
	struct audit_verify_report rv, rs;
	struct audit_session *s = NULL, *p = NULL;
	size_t n = 99, np = 0;

	assert_int_equal(audit_verify(dir, key, NULL, NULL, &rv), 0);
	assert_int_equal(audit_sessions_read_verified(dir, key, f, &s, &n, &rs), 0);
	assert_int_equal(rs.status, rv.status);
	assert_string_equal(rs.file, rv.file);
	assert_int_equal(rs.offset, rv.offset);
	assert_int_equal(rs.seq, rv.seq);
	assert_string_equal(rs.reason, rv.reason);
	assert_int_equal(rs.n_records, rv.n_records);
	assert_int_equal(rs.n_seals, rv.n_seals);
	assert_int_equal(rs.unsealed_records, rv.unsealed_records);
	if (rv.status != AUDIT_VERIFY_INTACT) {
		assert_null(s);
		assert_int_equal(n, 0);
		return rv.status;
	}
	assert_int_equal(audit_sessions_read(dir, f, &p, &np), 0);
	assert_same_sessions(s, n, p, np);
	audit_sessions_free(s, n);
	audit_sessions_free(p, np);
	return rv.status;
}

/* 23 records a session, as the recall benchmark's log (bench-audit.c). */
static int append_session(struct audit_log *log, unsigned i)
{
	char id[33], client[32], lot[32], cart[32];
	int r;

	snprintf(id, sizeof(id), "%032x", i + 1);
	snprintf(client, sizeof(client), "client-%05u", i);
	snprintf(lot, sizeof(lot), "LOT-%03u", i % 10);
	snprintf(cart, sizeof(cart), "CART-%06u", i);
	r = begin(log, id, client, "temples", lot, cart, "CL-1", 1700000000);
	if (r >= 0)
		r = audit_log_append(log, "zone_change",
				     (struct audit_field[]){ AUDIT_STR("session", id),
							     AUDIT_STR("zone", "crown") },
				     2, NULL);
	for (unsigned k = 0; r >= 0 && k < 20; k++) {
		struct audit_field f[] = {
			AUDIT_STR("session", id),	    AUDIT_STR("device", "GEN-DEV-1"),
			AUDIT_UINT("samples", 1000),	    AUDIT_UINT("voltage_mv_mean", 8000 + k),
			AUDIT_UINT("current_ma_mean", 700), AUDIT_INT("temp_cdeg_max", 3500),
		};

		r = audit_log_append(log, "telemetry", f, sizeof(f) / sizeof(f[0]), NULL);
	}
	if (r >= 0)
		r = event3(log, "session_end", id, "reason", "ended by the client");
	return r;
}

static void copy_dir(const char *from, const char *to)
{
	char *cmd;

	assert_true(asprintf(&cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* The record of file that holds text (its first occurrence): offset, length. */
static void find_record(const char *file, const char *text, size_t *ret_off, uint32_t *ret_len)
{
	uint8_t *buf = NULL;
	size_t size = 0, len = 0, off = AUDIT_FILE_HEADER_SIZE;
	const uint8_t *at;

	assert_int_equal(audit_read_file(AT_FDCWD, file, &buf, &size, &len), 0);
	at = memmem(buf, len, text, strlen(text));
	assert_non_null(at);
	for (;;) {
		uint32_t l = get_le32(buf + off + 4);

		assert_true(l >= AUDIT_RECORD_MIN && off + l <= len);
		if ((size_t)(at - buf) < off + l) {
			*ret_off = off;
			*ret_len = l;
			break;
		}
		off += l;
	}
	free(buf);
}

static void patch(const char *file, size_t off, const void *p, size_t n)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void test_verified(void **state)
{
	char *dir = make_dir(), *key = NULL, *other = NULL, *bad, *big, *file, *odir;
	struct audit_session_filter f = { .pigment_lot = "LOT-X" };
	struct audit_log_config cfg;
	struct audit_log *log;
	struct audit_verify_report rep;
	struct audit_session *s = NULL;
	size_t n = 0, off;
	uint32_t len;
	uint8_t b, crc[4];

	/* the log of every kind of session, left as a crash left it */
	assert_int_equal(generate_key(dir, &key), 0);
	assert_int_equal(check_verified(dir, key, NULL), AUDIT_VERIFY_INTACT);
	assert_int_equal(check_verified(dir, key, &f), AUDIT_VERIFY_INTACT);
	assert_int_equal(audit_sessions_read_verified(dir, key, &f, &s, &n, &rep), 0);
	assert_int_equal(n, 3);
	audit_sessions_free(s, n);
	assert_true(asprintf(&odir, "%s-other", dir) > 0);
	assert_int_equal(generate_key(odir, &other), 0);
	/* another log's key: unverifiable, no answer */
	assert_int_equal(check_verified(dir, other, NULL), AUDIT_VERIFY_UNVERIFIABLE);
	assert_int_equal(audit_sessions_read_verified(dir, "smpk1-nonsense", NULL, &s, &n, &rep),
			 -EINVAL);
	assert_int_equal(audit_sessions_read_verified(dir, NULL, NULL, &s, &n, &rep), -EINVAL);

	/* files of 2 MiB, the damage near the end of the first one */
	assert_true(asprintf(&big, "%s-big", dir) > 0);
	assert_true(asprintf(&bad, "%s-bad", dir) > 0);
	audit_log_config_init(&cfg);
	cfg.max_file_size = 2 << 20;
	free(key);
	assert_int_equal(audit_log_setup(big, &cfg, &key), 0);
	assert_int_equal(audit_log_open(big, &cfg, &log), 0);
	gen_fast = true;
	for (unsigned i = 0; i < 900; i++)
		assert_int_equal(append_session(log, i) >= 0, 1);
	gen_fast = false;
	assert_int_equal(audit_log_close(log), 0);
	assert_true(asprintf(&file, "%s/audit-0000000000000000.smplog", bad) > 0);
	f = (struct audit_session_filter){ .pigment_lot = "LOT-007" };
	assert_int_equal(check_verified(big, key, NULL), AUDIT_VERIFY_INTACT);
	assert_int_equal(check_verified(big, key, &f), AUDIT_VERIFY_INTACT);
	assert_int_equal(audit_sessions_read_verified(big, key, &f, &s, &n, &rep), 0);
	assert_int_equal(n, 90);
	assert_true(rep.n_files >= 3);
	audit_sessions_free(s, n);

	/* a bit of a telemetry record near the end of the first file: its CRC */
	copy_dir(big, bad);
	find_record(file, "client-00270", &off, &len);
	off += len + 100; /* inside the telemetry that follows */
	{
		int fd = open(file, O_RDWR | O_CLOEXEC);

		assert_true(fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1);
		b ^= 0x10;
		assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
		close(fd);
	}
	assert_int_equal(check_verified(bad, key, NULL), AUDIT_VERIFY_TAMPERED);
	assert_int_equal(audit_sessions_read_verified(bad, key, NULL, &s, &n, &rep), 0);
	assert_string_equal(rep.reason, "record checksum mismatch");
	assert_null(s);

	/* a client pseudonym rewritten with a correct CRC: only the hash chain
	 * (the SHA-256 of that record, in the next one) tells */
	copy_dir(big, bad);
	find_record(file, "client-00270", &off, &len);
	{
		uint8_t *rec = malloc(len);
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		uint8_t *c;

		assert_non_null(rec);
		assert_true(fd >= 0 && pread(fd, rec, len, (off_t)off) == (ssize_t)len);
		close(fd);
		c = memmem(rec, len, "client-00270", 12);
		assert_non_null(c);
		c[11] = '1'; /* client-00271 */
		put_le32(crc, audit_crc32(rec, len - 4));
		memcpy(rec + len - 4, crc, 4);
		patch(file, off, rec, len);
		free(rec);
	}
	assert_int_equal(check_verified(bad, key, NULL), AUDIT_VERIFY_TAMPERED);
	assert_int_equal(audit_sessions_read_verified(bad, key, NULL, &s, &n, &rep), 0);
	assert_non_null(strstr(rep.reason, "hash chain broken"));
	assert_null(s);

	/* the end cut off */
	copy_dir(big, bad);
	{
		char *last;

		assert_true(asprintf(&last,
				     "ls -1 '%s'/audit-*.smplog | tail -n 1 | xargs truncate -s -10",
				     bad) > 0);
		assert_int_equal(system(last), 0);
		free(last);
	}
	assert_int_equal(check_verified(bad, key, NULL), AUDIT_VERIFY_TRUNCATED);

	free(file);
	free(key);
	free(other);
	free(bad);
	free(big);
	free(odir);
	rm_dir(dir); /* and the other logs beside it */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_verified),
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
