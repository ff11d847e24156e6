/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libsmp's reading of past sessions by lot (issue 15, LIBSMP_1.1):
 * smp_log_list_sessions_filtered() and smp_log_export_sessions() by pigment
 * lot, cartridge id, cartridge lot and the date of the session's begin, and
 * smp_log_key_fingerprint() against the fingerprint every file header holds.
 * The log is written here with the audit library, its clock set to four
 * dates of 2026, so that no daemon is needed.
 *
 * `test-libsmp-log --generate DIR` writes that log into DIR and prints its
 * verification key (for check-bundle.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit-log.h"
#include "libsmp.h"

static int failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                              \
		}                                                                                \
	} while (0)
#define CHECK_R(expr, want)                                                                      \
	do {                                                                                     \
		long long _r = (long long)(expr), _w = (long long)(want);                        \
		if (_r != _w) {                                                                  \
			fprintf(stderr, "%s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, \
				#expr, _r, _w);                                                  \
			failures++;                                                              \
		}                                                                                \
	} while (0)

#define DAY_USEC (86400ULL * 1000000ULL)
/* 2026-01-10, 2026-02-15, 2026-03-20, 2026-04-25 at 10:00 UTC */
static const uint64_t days[] = { 20463, 20499, 20532, 20568 };
static uint64_t clock_now;

static uint64_t test_clock(void *userdata)
{
	return clock_now;
}

struct spec {
	const char *id, *client, *lot, *cart, *cart_lot;
};

static const struct spec sessions[] = {
	{ "11111111111111111111111111111111", "client-1", "LOT-A", "CART-1", "CL-1" },
	{ "22222222222222222222222222222222", "client-2", "LOT-B", "CART-2", "CL-1" },
	{ "33333333333333333333333333333333", "client-3", "LOT-A", "CART-3", "CL-2" },
	{ "44444444444444444444444444444444", "client-4", "LOT-B", "CART-4", "CL-2" },
};

static uint64_t begin_of(size_t i)
{
	return days[i] * DAY_USEC + 10ULL * 3600 * 1000000;
}

/* Four sessions on four days, each begun, with a zone change, a fault and
 * a stop, then ended; the log closed (sealed). */
static int generate(const char *dir, char **ret_key)
{
	struct audit_log_config cfg;
	struct audit_log *log = NULL;
	int r;

	audit_log_config_init(&cfg);
	cfg.clock_realtime_usec = test_clock;
	clock_now = begin_of(0) - DAY_USEC;
	r = audit_log_setup(dir, &cfg, ret_key);
	if (r >= 0)
		r = audit_log_open(dir, &cfg, &log);
	for (size_t i = 0; r >= 0 && i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		const struct spec *s = &sessions[i];
		struct audit_field b[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("device", "GEN-DEV-1"),
			AUDIT_STR("client", s->client),
			AUDIT_STR("operator", "op-gen"),
			AUDIT_STR("zone", "hairline"),
			AUDIT_STR("pigment_lot", s->lot),
			AUDIT_STR("pigment_manufacturer", "Maker, Inc."),
			AUDIT_STR("cartridge", s->cart),
			AUDIT_STR("cartridge_lot", s->cart_lot),
			AUDIT_STR("needle", "3RL"),
			AUDIT_INT("patch_test_time", (int64_t)(begin_of(i) / 1000000) - 2 * 86400),
			AUDIT_INT("screening_time", 0),
		};
		struct audit_field z[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("from", "hairline"),
			AUDIT_STR("zone", "crown"),
		};
		struct audit_field f[] = {
			AUDIT_STR("device", "GEN-DEV-1"),
			AUDIT_STR("session", s->id),
			AUDIT_STR("fault", "brownout"),
			AUDIT_STR("message", "the supply sagged"),
		};
		struct audit_field st[] = {
			AUDIT_STR("device", "GEN-DEV-1"),
			AUDIT_STR("client", s->client),
			AUDIT_STR("reason", "requested by the client"),
		};
		struct audit_field e[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("reason", "ended by the client"),
			AUDIT_UINT("needle_on_ms", 60000),
		};

		clock_now = begin_of(i);
		r = audit_log_append(log, "session_begin", b, sizeof(b) / sizeof(b[0]), NULL);
		clock_now += 60 * 1000000ULL;
		if (r >= 0)
			r = audit_log_append(log, "zone_change", z, 4, NULL);
		clock_now += 60 * 1000000ULL;
		if (r >= 0)
			r = audit_log_append(log, "fault", f, 4, NULL);
		clock_now += 1000;
		if (r >= 0)
			r = audit_log_append(log, "stop", st, 3, NULL);
		clock_now += 60 * 1000000ULL;
		if (r >= 0)
			r = audit_log_append(log, "session_end", e, 4, NULL);
	}
	if (log) {
		int k = audit_log_close(log);

		r = r < 0 ? r : k;
	}
	return r < 0 ? r : 0;
}

/* the ids of a session list, "1,3" style (the spec index + 1) */
static void ids(smp_session **list, char *buf, size_t n)
{
	buf[0] = '\0';
	for (size_t i = 0; list && list[i]; i++)
		for (size_t k = 0; k < sizeof(sessions) / sizeof(sessions[0]); k++)
			if (strcmp(smp_session_get_id(list[i]), sessions[k].id) == 0)
				snprintf(buf + strlen(buf), n - strlen(buf), "%s%zu",
					 buf[0] ? "," : "", k + 1);
}

static void expect(const char *dir, const char *lot, const char *cart, const char *cart_lot,
		   uint64_t since, uint64_t until, const char *want, int line)
{
	smp_session **list = NULL;
	char got[64];
	int n = smp_log_list_sessions_filtered(dir, lot, cart, cart_lot, since, until, &list);

	if (n < 0) {
		fprintf(stderr, "line %d: smp_log_list_sessions_filtered: %s\n", line, strerror(-n));
		failures++;
		return;
	}
	ids(list, got, sizeof(got));
	if (strcmp(got, want) != 0 || (size_t)n != (want[0] ? (strlen(want) + 1) / 2 : 0)) {
		fprintf(stderr, "line %d: sessions %s (n=%d), expected %s\n", line, got, n, want);
		failures++;
	}
	smp_session_list_free(list);
}

static void test_filters(const char *dir)
{
	smp_session **list = NULL;
	uint64_t feb1 = 20485 * DAY_USEC, mar31 = 20543 * DAY_USEC;

	expect(dir, NULL, NULL, NULL, 0, 0, "1,2,3,4", __LINE__);
	expect(dir, "LOT-A", NULL, NULL, 0, 0, "1,3", __LINE__);
	expect(dir, "LOT-B", NULL, NULL, 0, 0, "2,4", __LINE__);
	expect(dir, NULL, "CART-2", NULL, 0, 0, "2", __LINE__);
	expect(dir, NULL, NULL, "CL-1", 0, 0, "1,2", __LINE__);
	expect(dir, "LOT-A", NULL, "CL-2", 0, 0, "3", __LINE__);
	expect(dir, "LOT-A", "CART-2", NULL, 0, 0, "", __LINE__);
	expect(dir, "LOT-Z", NULL, NULL, 0, 0, "", __LINE__);
	expect(dir, "lot-a", NULL, NULL, 0, 0, "", __LINE__); /* exact, as recorded */
	/* begun in [Feb 1, Mar 31): the second and the third */
	expect(dir, NULL, NULL, NULL, feb1, mar31, "2,3", __LINE__);
	expect(dir, "LOT-A", NULL, NULL, feb1, mar31, "3", __LINE__);
	expect(dir, NULL, NULL, NULL, begin_of(1), begin_of(2), "2", __LINE__); /* [since, until) */
	expect(dir, NULL, NULL, NULL, begin_of(3) + 1, 0, "", __LINE__);
	/* what libsmp reads of a filtered session is what smp_log_list_sessions() reads */
	CHECK_R(smp_log_list_sessions_filtered(dir, NULL, "CART-3", NULL, 0, 0, &list), 1);
	if (list && list[0]) {
		CHECK(strcmp(smp_session_get_client_pseudonym(list[0]), "client-3") == 0);
		CHECK(strcmp(smp_session_get_pigment_lot(list[0]), "LOT-A") == 0);
		CHECK(strcmp(smp_session_get_cartridge_lot(list[0]), "CL-2") == 0);
		CHECK(strcmp(smp_session_get_zone(list[0]), "crown") == 0);
		CHECK(smp_session_get_begin_usec(list[0]) == begin_of(2));
		CHECK(!smp_session_is_active(list[0]) && !smp_session_is_live(list[0]));
		CHECK(strcmp(smp_session_get_end_reason(list[0]), "ended by the client") == 0);
	}
	smp_session_list_free(list);
	list = NULL;
	/* a filter that cannot be one is refused, never read as "any" */
	CHECK_R(smp_log_list_sessions_filtered(dir, "", NULL, NULL, 0, 0, &list), -EINVAL);
	CHECK_R(smp_log_list_sessions_filtered(dir, NULL, "", NULL, 0, 0, &list), -EINVAL);
	CHECK_R(smp_log_list_sessions_filtered(dir, NULL, NULL, "", 0, 0, &list), -EINVAL);
	CHECK_R(smp_log_list_sessions_filtered(dir, NULL, NULL, NULL, mar31, feb1, &list), -EINVAL);
	CHECK_R(smp_log_list_sessions_filtered(dir, NULL, NULL, NULL, feb1, feb1, &list), -EINVAL);
	CHECK_R(smp_log_list_sessions_filtered(dir, "LOT-A", NULL, NULL, 0, 0, NULL), -EINVAL);
	CHECK_R(smp_log_list_sessions_filtered("", "LOT-A", NULL, NULL, 0, 0, &list), -EINVAL);
	CHECK(list == NULL);
	CHECK(smp_log_list_sessions_filtered("/nonexistent-smp-log", "LOT-A", NULL, NULL, 0, 0,
					     &list) < 0);
	CHECK(list == NULL);
}

static void test_export(const char *dir)
{
	char *buf = NULL, *line, *save = NULL;
	size_t sz = 0;
	FILE *f = open_memstream(&buf, &sz);
	int rows = 0;

	CHECK(f);
	if (!f)
		return;
	CHECK_R(smp_log_export_sessions(dir, SMP_LOG_FORMAT_CSV, "LOT-A", NULL, NULL, 0, 0, f), 2);
	fclose(f);
	line = strtok_r(buf, "\r\n", &save);
	CHECK(line && strncmp(line, "session,state,begin,end,client,", 31) == 0);
	for (line = strtok_r(NULL, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		CHECK(strncmp(line, rows == 0 ? sessions[0].id : sessions[2].id, 32) == 0);
		CHECK(strstr(line, ",ended,") && strstr(line, "LOT-A"));
		rows++;
	}
	CHECK_R(rows, 2);
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &sz);
	CHECK(f);
	if (!f)
		return;
	CHECK_R(smp_log_export_sessions(dir, SMP_LOG_FORMAT_JSON, NULL, NULL, "CL-1", begin_of(1),
					0, f),
		1);
	fclose(f);
	CHECK(buf && buf[0] == '{' && strstr(buf, sessions[1].id) &&
	      strchr(buf, '\n') == buf + strlen(buf) - 1);
	free(buf);
	f = fopen("/dev/null", "we");
	CHECK_R(smp_log_export_sessions(dir, (enum smp_log_format)7, NULL, NULL, NULL, 0, 0, f),
		-EINVAL);
	CHECK_R(smp_log_export_sessions(dir, SMP_LOG_FORMAT_CSV, NULL, NULL, NULL, 0, 0, NULL),
		-EINVAL);
	CHECK_R(smp_log_export_sessions(dir, SMP_LOG_FORMAT_CSV, "", NULL, NULL, 0, 0, f), -EINVAL);
	CHECK_R(smp_log_export_sessions(dir, SMP_LOG_FORMAT_CSV, NULL, NULL, NULL, 5, 5, f), -EINVAL);
	if (f)
		fclose(f);
}

/* the fingerprint is the one in the header of every file (bytes 32..39) */
static void test_fingerprint(const char *dir, const char *key, const char *other_key)
{
	char path[4096], hex[17], *fp = NULL, *fp2 = NULL, *fp3 = NULL;
	unsigned char hdr[64] = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/audit-0000000000000000.smplog", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(fd >= 0 && read(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", hdr[32 + i]);
	CHECK_R(smp_log_key_fingerprint(key, &fp), 0);
	CHECK(fp && strlen(fp) == 16 && strcmp(fp, hex) == 0);
	/* typed back from paper: no dashes, upper case */
	{
		char typed[256];
		size_t n = 0;

		for (const char *p = key; *p && n + 1 < sizeof(typed); p++)
			if (*p != '-' || p - key < 6)
				typed[n++] = p - key >= 6 && *p >= 'a' && *p <= 'f' ?
						     (char)(*p - 32) :
						     *p;
		typed[n] = '\0';
		CHECK_R(smp_log_key_fingerprint(typed, &fp2), 0);
		CHECK(fp2 && fp && strcmp(fp2, fp) == 0);
	}
	CHECK_R(smp_log_key_fingerprint(other_key, &fp3), 0);
	CHECK(fp3 && fp && strcmp(fp3, fp) != 0);
	free(fp2);
	fp2 = NULL;
	CHECK_R(smp_log_key_fingerprint("smpk1-not-a-key", &fp2), -EINVAL);
	CHECK_R(smp_log_key_fingerprint(NULL, &fp2), -EINVAL);
	CHECK_R(smp_log_key_fingerprint(key, NULL), -EINVAL);
	CHECK(fp2 == NULL);
	free(fp);
	free(fp3);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/test-libsmp-log-XXXXXX", dir[64], dir2[64], cmd[128];
	char *key = NULL, *key2 = NULL;
	int r;

	if (argc == 3 && strcmp(argv[1], "--generate") == 0) {
		r = generate(argv[2], &key);
		if (r < 0) {
			fprintf(stderr, "test-libsmp-log: cannot write %s: %s\n", argv[2],
				strerror(-r));
			return 1;
		}
		printf("%s\n", key);
		free(key);
		return 0;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: test-libsmp-log [--generate DIR]\n");
		return 2;
	}
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(dir, sizeof(dir), "%s/log", tmpl);
	snprintf(dir2, sizeof(dir2), "%s/other", tmpl);
	r = generate(dir, &key);
	if (r >= 0)
		r = generate(dir2, &key2);
	if (r < 0) {
		fprintf(stderr, "test-libsmp-log: generate: %s\n", strerror(-r));
		return 1;
	}
	CHECK_R(smp_log_verify(dir, key, NULL, NULL, NULL), SMP_LOG_INTACT);
	test_filters(dir);
	test_export(dir);
	test_fingerprint(dir, key, key2);
	free(key);
	free(key2);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		failures++;
	if (failures) {
		fprintf(stderr, "FAIL: %d checks failed\n", failures);
		return 1;
	}
	printf("ok: lot, cartridge and date filters, the session export and the key fingerprint\n");
	return 0;
}
