/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The audit log writer: round trip through the reader and exporter,
 * durability tickets and group commit, write/sync/key errors returned
 * (and real ENOSPC on a small tmpfs), torn-tail recovery, rotation and
 * retention.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include "../cmocka-analyzer.h"
#include <json-c/json.h>

#include "audit-test-util.h"

struct fixture {
	char *dir;
	char *vkey;
	uint8_t key0[AUDIT_KEY_SIZE];
	struct test_hooks hooks;
	struct audit_log_config cfg;
};

static int fx_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char *base;

	assert_non_null(fx);
	base = make_tmpdir();
	fx->dir = path_join(base, "log");
	free(base);
	hooks_init(&fx->hooks);
	audit_log_config_init(&fx->cfg);
	hooks_config(&fx->hooks, &fx->cfg);
	assert_int_equal(audit_log_setup(fx->dir, &fx->cfg, &fx->vkey), 0);
	assert_int_equal(audit_vkey_parse(fx->vkey, fx->key0), 0);
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fixture *fx = *state;
	char *base = strdup(fx->dir);

	*strrchr(base, '/') = 0;
	rm_rf(base);
	free(base);
	free(fx->dir);
	free(fx->vkey);
	free(fx);
	return 0;
}

static struct audit_verify_report verify_dir(struct fixture *fx)
{
	struct audit_verify_report rep;

	assert_int_equal(audit_verify(fx->dir, fx->vkey, NULL, NULL, &rep), 0);
	return rep;
}

static void assert_intact(struct fixture *fx)
{
	struct audit_verify_report rep = verify_dir(fx);

	if (rep.status != AUDIT_VERIFY_INTACT)
		fail_msg("log not intact: status %d, %s at %s+%lu: %s", rep.status, rep.file,
			 rep.file, (unsigned long)rep.offset, rep.reason);
}

static off_t file_size(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return st.st_size;
}

static char *last_file(const char *dir)
{
	char **names = NULL, *r;
	size_t n = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	assert_true(dfd >= 0);
	assert_int_equal(audit_list_files(dfd, &names, &n), 0);
	assert_true(n > 0);
	r = strdup(names[n - 1]);
	audit_free_names(names, n);
	close(dfd);
	return r;
}

/* ---- round trip ---- */

struct collect {
	unsigned events, seals, recoveries, retentions, opens, file_starts;
	int64_t delta5;
	double volt5;
	char session5[32];
	char event5[32];
	uint8_t blob5[4];
	uint64_t cut_bytes, cut_offset;
	uint64_t rt_event1000, rt_event2000;
	unsigned prev_type_before_file_start_bad;
	uint16_t prev_type;
};

static const struct audit_field_view *fv(const struct audit_record_view *r, const char *k)
{
	for (size_t i = 0; i < r->n_fields; i++)
		if (strcmp(r->fields[i].key, k) == 0)
			return &r->fields[i];
	return NULL;
}

static int collect_cb(const struct audit_record_view *r, void *userdata)
{
	struct collect *c = userdata;

	switch (r->type) {
	case AUDIT_REC_EVENT:
		if (c->events == 5) {
			c->delta5 = fv(r, "delta")->i;
			c->volt5 = fv(r, "voltage_mean")->d;
			snprintf(c->session5, sizeof(c->session5), "%s", fv(r, "session")->s);
			memcpy(c->blob5, fv(r, "blob")->bytes, 4);
			snprintf(c->event5, sizeof(c->event5), "%s", r->event);
		}
		if (c->events == 1000)
			c->rt_event1000 = r->realtime_usec;
		if (c->events == 2000)
			c->rt_event2000 = r->realtime_usec;
		c->events++;
		break;
	case AUDIT_REC_SEAL:
		c->seals++;
		break;
	case AUDIT_REC_RECOVERY:
		c->recoveries++;
		c->cut_bytes = fv(r, "cut_bytes")->u;
		c->cut_offset = fv(r, "offset")->u;
		break;
	case AUDIT_REC_RETENTION:
		c->retentions++;
		break;
	case AUDIT_REC_OPEN:
		c->opens++;
		break;
	case AUDIT_REC_FILE_START:
		c->file_starts++;
		if (c->prev_type != AUDIT_REC_SEAL)
			c->prev_type_before_file_start_bad++;
		break;
	default:
		break;
	}
	c->prev_type = r->type;
	return 0;
}

static void progress_cb(uint64_t done, uint64_t total, void *userdata)
{
	uint64_t *p = userdata;

	assert_true(done >= p[1]);
	assert_true(done <= total);
	p[0]++;
	p[1] = done;
	p[2] = total;
}

static void test_roundtrip(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;
	struct collect c = {};

	fx->cfg.seal_every_records = 100;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 3000, 0), 0);
	assert_int_equal(audit_log_close(log), 0);

	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_true(rep.clean_close);
	assert_true(rep.key_state_checked);
	assert_int_equal(rep.unsealed_records, 0);
	assert_true(rep.n_seals >= 30);
	/* created + open + 3000 events + close + seals */
	assert_int_equal(rep.n_records, 3 + 3000 + rep.n_seals);

	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);
	assert_int_equal(c.events, 3000);
	assert_int_equal(c.seals, rep.n_seals);
	assert_int_equal(c.delta5, -5);
	assert_true(c.volt5 > 7.2999 && c.volt5 < 7.3001);
	assert_string_equal(c.session5, "s-0000");
	assert_string_equal(c.event5, "set_parameters");
	assert_memory_equal(c.blob5, ((uint8_t[]){ 5, 0, 0xa5, 0x5a }), 4);

	/* Progress: monotonic, ends at the total. */
	{
		uint64_t prog[3] = { 0, 0, 0 }; /* calls, last done, last total */

		assert_int_equal(audit_verify(fx->dir, fx->vkey, progress_cb, prog, &rep), 0);
		assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
		assert_true(prog[0] >= 1);
		assert_int_equal(prog[1], prog[2]);
		assert_int_equal(prog[2], rep.n_bytes);
	}

	/* Without the key: chain checked, status never better than unverifiable. */
	assert_int_equal(audit_verify(fx->dir, NULL, NULL, NULL, &rep), 0);
	assert_int_equal(rep.status, AUDIT_VERIFY_UNVERIFIABLE);
}

static void test_bad_arguments(void **state)
{
	struct fixture *fx = *state;
	struct audit_log *log;
	char *k2 = NULL;
	struct audit_field bad_utf8[] = { AUDIT_STR("note", "\xc3\x28") };
	struct audit_field bad_key[] = { AUDIT_STR("Bad-Key", "x") };
	struct audit_field dup[] = { AUDIT_UINT("a", 1), AUDIT_UINT("a", 2) };
	struct audit_field nan_f[] = { AUDIT_DOUBLE("v", NAN) };
	struct audit_field reserved[] = { AUDIT_STR("event", "x") };
	uint64_t t;

	assert_int_equal(audit_log_setup(fx->dir, NULL, &k2), -EEXIST);
	assert_null(k2);
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(audit_log_append(log, "ok", bad_utf8, 1, &t), -EINVAL);
	assert_int_equal(audit_log_append(log, "ok", bad_key, 1, &t), -EINVAL);
	assert_int_equal(audit_log_append(log, "ok", dup, 2, &t), -EINVAL);
	assert_int_equal(audit_log_append(log, "ok", nan_f, 1, &t), -EINVAL);
	assert_int_equal(audit_log_append(log, "ok", reserved, 1, &t), -EINVAL);
	assert_int_equal(audit_log_append(log, "Bad Event", NULL, 0, &t), -EINVAL);
	assert_int_equal(audit_log_append(log, "", NULL, 0, &t), -EINVAL);
	assert_int_equal(audit_log_get_error(log), 0);
	assert_int_equal(audit_log_append(log, "ok", NULL, 0, &t), 0);
	{
		/* The event name takes one of the AUDIT_FIELDS_MAX fields. */
		static char keys[AUDIT_FIELDS_MAX][8];
		struct audit_field many[AUDIT_FIELDS_MAX];

		for (int i = 0; i < AUDIT_FIELDS_MAX; i++) {
			snprintf(keys[i], sizeof(keys[i]), "k%d", i);
			many[i] = AUDIT_UINT(keys[i], (uint64_t)i);
		}
		assert_int_equal(audit_log_append(log, "wide", many, AUDIT_FIELDS_MAX, &t), -EINVAL);
		assert_int_equal(audit_log_append(log, "wide", many, AUDIT_FIELDS_MAX - 1, &t), 0);
	}
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);

	assert_int_equal(audit_log_open("/nonexistent/smp-audit", NULL, &log), -ENOENT);
}

static void test_export(void **state)
{
	struct fixture *fx = *state;
	struct audit_export_filter flt = {};
	struct audit_log *log;
	struct collect c = {};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	struct audit_field odd[] = { AUDIT_STR("session", "s,1 \"x\""),
				     AUDIT_STR("note", "line1\nline2 \"q\" \\ \xc3\xa9") };
	unsigned lines = 0;

	fx->cfg.seal_every_records = 100;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 3000, 0), 0);
	assert_int_equal(audit_log_append(log, "annotation", odd, 2, NULL), 0);
	assert_int_equal(audit_log_close(log), 0);
	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);

	/* JSON lines, session filter: exactly the 100 events of s-0007. */
	flt.session = "s-0007";
	f = open_memstream(&buf, &len);
	assert_int_equal(audit_export(fx->dir, AUDIT_EXPORT_JSON, &flt, f), 100);
	fclose(f);
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(l), *fields, *s;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "fields", &fields));
		assert_true(json_object_object_get_ex(fields, "session", &s));
		assert_string_equal(json_object_get_string(s), "s-0007");
		json_object_put(o);
		lines++;
	}
	assert_int_equal(lines, 100);
	free(buf);

	/* Client filter: sessions with odd hundreds belong to c-7f3a. */
	flt = (struct audit_export_filter){ .client = "c-7f3a" };
	f = fopen("/dev/null", "w");
	assert_int_equal(audit_export(fx->dir, AUDIT_EXPORT_JSON, &flt, f), 1500);
	/* Date range: [event 1000, event 2000) holds 1000 events plus the seals between. */
	flt = (struct audit_export_filter){ .since_usec = c.rt_event1000,
					    .until_usec = c.rt_event2000,
					    .session = NULL };
	{
		int64_t n = audit_export(fx->dir, AUDIT_EXPORT_JSON, &flt, f);

		assert_true(n >= 1000 && n <= 1000 + 11);
	}
	fclose(f);

	/* Escaping through json-c round-trips exactly. */
	buf = NULL;
	flt = (struct audit_export_filter){ .session = "s,1 \"x\"" };
	f = open_memstream(&buf, &len);
	assert_int_equal(audit_export(fx->dir, AUDIT_EXPORT_JSON, &flt, f), 1);
	fclose(f);
	{
		json_object *o = json_tokener_parse(buf), *fields, *s;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "fields", &fields));
		assert_true(json_object_object_get_ex(fields, "note", &s));
		assert_string_equal(json_object_get_string(s), "line1\nline2 \"q\" \\ \xc3\xa9");
		json_object_put(o);
	}
	free(buf);

	/* CSV: header, then RFC 4180 quoting of the odd session cell. */
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_int_equal(audit_export(fx->dir, AUDIT_EXPORT_CSV, &flt, f), 1);
	fclose(f);
	assert_true(
		strncmp(buf,
			"seq,time,realtime_usec,monotonic_usec,type,event,session,client,fields\r\n",
			71) == 0);
	assert_non_null(strstr(buf, ",event,annotation,\"s,1 \"\"x\"\"\",,\"{"));
	assert_int_equal(buf[len - 1], '\n');
	free(buf);
}

/* ---- durability ---- */

static void test_durability_tickets(void **state)
{
	struct fixture *fx = *state;
	uint64_t t[50], t2;
	unsigned base;
	struct audit_log *log;

	fx->cfg.seal_every_records = 100000;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	base = fx->hooks.calls[AUDIT_IO_SYNC];
	for (unsigned i = 0; i < 50; i++) {
		struct audit_field f = AUDIT_UINT("i", i);

		assert_int_equal(audit_log_append(log, "telemetry", &f, 1, &t[i]), 0);
		if (i > 0)
			assert_int_equal(t[i], t[i - 1] + 1);
	}
	/* Appends alone never sync; nothing appended is claimed durable. */
	assert_int_equal(fx->hooks.calls[AUDIT_IO_SYNC], base);
	assert_true(audit_log_synced_seq(log) < t[0]);
	assert_int_equal(audit_log_last_seq(log), t[49]);

	/* Group commit: one fdatasync covers all 50. */
	assert_int_equal(audit_log_sync(log, t[49]), 0);
	assert_int_equal(fx->hooks.calls[AUDIT_IO_SYNC], base + 1);
	assert_true(audit_log_synced_seq(log) >= t[49]);
	assert_int_equal(audit_log_sync(log, t[10]), 0);
	assert_int_equal(fx->hooks.calls[AUDIT_IO_SYNC], base + 1);

	/* A ticket from the future is refused. */
	assert_int_equal(audit_log_sync(log, t[49] + 1), -EINVAL);

	assert_int_equal(audit_log_append_durable(log, "start", NULL, 0, &t2), 0);
	assert_int_equal(fx->hooks.calls[AUDIT_IO_SYNC], base + 2);
	assert_int_equal(audit_log_synced_seq(log), t2);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
}

static void test_seal_by_count_and_time(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;

	fx->cfg.seal_every_records = 10;
	fx->cfg.seal_every_usec = 3600ULL * 1000000;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 95, 0), 0);
	audit_log_free(log); /* crash: no closing seal */
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	/* created + open + 95 events = 97 records, a seal after every 10 */
	assert_int_equal(rep.n_seals, 9);
	assert_int_equal(rep.unsealed_records, 97 - 90);
	assert_false(rep.clean_close);

	/* Time-based: tick seals pending records once the interval passed. */
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(audit_log_tick(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.n_seals, 9);
	fx->hooks.now_usec += 3601ULL * 1000000;
	assert_int_equal(audit_log_tick(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.n_seals, 10);
	assert_int_equal(rep.unsealed_records, 0);
	assert_int_equal(audit_log_close(log), 0);
}

static void test_clock_set_back(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;

	fx->cfg.seal_every_usec = 60ULL * 1000000;
	fx->cfg.max_file_age_usec = 3600ULL * 1000000;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 5, 0), 0);
	/* NTP steps the clock back a day: no seal or rotation storm. */
	fx->hooks.now_usec -= 86400ULL * 1000000;
	assert_int_equal(append_events(log, 50, 5), 0);
	assert_int_equal(audit_log_tick(log), 0);
	audit_log_free(log);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.n_seals, 0);
	assert_int_equal(rep.n_files, 1);
}

/* audit_log_next_tick() says when tick has work, so smpd arms one timer
 * for it instead of ticking every second. */
static void test_next_tick(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;
	uint64_t d = 42;

	fx->cfg.seal_every_usec = 60ULL * 1000000;
	fx->cfg.max_file_age_usec = 3600ULL * 1000000;
	assert_int_equal(audit_log_next_tick(NULL, &d), -EINVAL);
	assert_int_equal(d, 42);
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(audit_log_next_tick(log, NULL), -EINVAL);
	assert_int_equal(append_events(log, 5, 0), 0);
	/* records pending: the seal is due 60 s after the last one */
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_true(d > 0 && d <= 60ULL * 1000000);
	/* the fake clock advances 1 ms per reading */
	fx->hooks.now_usec += d - 10000;
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_true(d > 0 && d < 10000);
	assert_int_equal(audit_log_tick(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.n_seals, 0); /* not yet due: tick did nothing */
	fx->hooks.now_usec += 10000;
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_int_equal(d, 0);
	assert_int_equal(audit_log_tick(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.n_seals, 1);
	assert_int_equal(rep.unsealed_records, 0);
	/* nothing pending: only the rotation by age remains, an hour after the file began */
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_true(d > 60ULL * 1000000 && d <= 3600ULL * 1000000 - 60ULL * 1000000);
	fx->hooks.now_usec += d;
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_int_equal(d, 0);
	assert_int_equal(audit_log_tick(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.n_files, 2);
	/* the new file's file_start record is pending and the last seal is
	 * older than a period: due at once, as tick would have it; after
	 * that seal only the next rotation is due, an hour on */
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_int_equal(d, 0);
	assert_int_equal(audit_log_tick(log), 0);
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_true(d > 3590ULL * 1000000 && d <= 3600ULL * 1000000);
	rep = verify_dir(fx);
	assert_int_equal(rep.n_seals, 2);
	assert_int_equal(rep.unsealed_records, 0);
	/* the clock set back a day: the seal is delayed a full period, not due at once */
	assert_int_equal(append_events(log, 1, 5), 0);
	fx->hooks.now_usec -= 86400ULL * 1000000;
	assert_int_equal(audit_log_next_tick(log, &d), 1);
	assert_int_equal(d, 60ULL * 1000000);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
}

/* ---- errors ---- */

static void test_write_error_rollback(void **state)
{
	struct fixture *fx = *state;
	struct audit_log *log;
	char *name;
	off_t before;
	uint64_t t;

	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 20, 0), 0);
	assert_int_equal(audit_log_sync(log, audit_log_last_seq(log)), 0);
	name = last_file(fx->dir);
	before = file_size(fx->dir, name);

	fx->hooks.fail_op = AUDIT_IO_WRITE;
	fx->hooks.fail_errno = ENOSPC;
	fx->hooks.fail_after = fx->hooks.calls[AUDIT_IO_WRITE];
	fx->hooks.fail_count = 1;
	assert_int_equal(audit_log_append_durable(log, "start", NULL, 0, &t), -ENOSPC);
	/* The half-written record was cut off again; the log stays usable. */
	assert_int_equal(file_size(fx->dir, name), before);
	assert_int_equal(audit_log_get_error(log), 0);
	assert_int_equal(audit_log_append_durable(log, "start", NULL, 0, &t), 0);
	assert_int_equal(audit_log_close(log), 0);
	free(name);
	assert_intact(fx);
}

static void test_sync_error_poisons(void **state)
{
	struct fixture *fx = *state;
	struct audit_log *log;
	uint64_t t;

	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	fx->hooks.fail_op = AUDIT_IO_SYNC;
	fx->hooks.fail_errno = EIO;
	fx->hooks.fail_after = fx->hooks.calls[AUDIT_IO_SYNC];
	fx->hooks.fail_count = 1;
	assert_int_equal(audit_log_append_durable(log, "start", NULL, 0, &t), -EIO);
	/* After a failed fdatasync nothing can be trusted: sticky. */
	assert_int_equal(audit_log_get_error(log), -EIO);
	assert_int_equal(audit_log_append(log, "stop", NULL, 0, &t), -EIO);
	assert_int_equal(audit_log_sync(log, 0), -EIO);
	assert_int_equal(audit_log_seal(log), -EIO);
	assert_int_equal(audit_log_tick(log), -EIO);
	assert_int_equal(audit_log_close(log), -EIO);

	/* Reopening recovers a consistent log. */
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
}

static void test_key_write_error(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;

	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 5, 0), 0);
	fx->hooks.fail_op = AUDIT_IO_KEY_WRITE;
	fx->hooks.fail_errno = EIO;
	fx->hooks.fail_after = fx->hooks.calls[AUDIT_IO_KEY_WRITE];
	fx->hooks.fail_count = 1;
	/* The seal reached the disk, the key could not move on. */
	assert_int_equal(audit_log_seal(log), -EIO);
	assert_int_equal(audit_log_get_error(log), -EIO);
	assert_int_equal(audit_log_append(log, "x", NULL, 0, NULL), -EIO);
	audit_log_free(log);

	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.n_seals, 1);

	/* Open finishes the interrupted key evolution; seals stay consecutive. */
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 5, 5), 0);
	assert_int_equal(audit_log_close(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.n_seals, 2);
}

/* A crash between the two key slot writes leaves the old key in slot 0:
 * open overwrites it, so the old key cannot be read back later. */
static void test_stale_key_slot_erased(void **state)
{
	struct fixture *fx = *state;
	char *kp = path_join(fx->dir, AUDIT_KEY_FILE);
	uint8_t kf[AUDIT_KEY_FILE_SIZE], old_slot[AUDIT_KEY_SLOT_SIZE];
	struct audit_key_state ks;
	struct audit_log *log;
	int fd;

	fd = open(kp, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, old_slot, sizeof(old_slot), AUDIT_KEY_SLOT0),
			 (ssize_t)sizeof(old_slot));
	close(fd);

	/* Fail the second slot write of the first evolution. */
	fx->hooks.fail_op = AUDIT_IO_KEY_WRITE;
	fx->hooks.fail_errno = EIO;
	fx->hooks.fail_after = 1;
	fx->hooks.fail_count = 1;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 3, 0), 0);
	assert_int_equal(audit_log_seal(log), -EIO);
	audit_log_free(log);

	fd = open(kp, O_RDONLY);
	assert_int_equal(read(fd, kf, sizeof(kf)), (ssize_t)sizeof(kf));
	close(fd);
	assert_int_equal(audit_key_state_parse(kf, sizeof(kf), &ks), 0);
	assert_int_equal(ks.epoch, 1);
	assert_true(ks.stale_slot);
	assert_memory_equal(kf + AUDIT_KEY_SLOT0, old_slot, sizeof(old_slot)); /* K_0 still there */

	fx->hooks.fail_op = -1;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	fd = open(kp, O_RDONLY);
	assert_int_equal(read(fd, kf, sizeof(kf)), (ssize_t)sizeof(kf));
	close(fd);
	assert_int_equal(audit_key_state_parse(kf, sizeof(kf), &ks), 0);
	assert_false(ks.stale_slot);
	assert_memory_not_equal(kf + AUDIT_KEY_SLOT0, old_slot, sizeof(old_slot));
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
	free(kp);
}

static void test_create_error_at_rotation(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;
	int r = 0;
	unsigned i;

	fx->cfg.max_file_size = 8192;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	fx->hooks.fail_op = AUDIT_IO_CREATE;
	fx->hooks.fail_errno = EROFS;
	fx->hooks.fail_count = 1;
	for (i = 0; i < 100 && r == 0; i++)
		r = append_events(log, 1, i);
	assert_int_equal(r, -EROFS);
	assert_int_equal(audit_log_get_error(log), 0);
	assert_int_equal(append_events(log, 100, i), 0);
	assert_int_equal(audit_log_close(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_true(rep.n_files > 1);
}

/*
 * Real ENOSPC: a 96 KiB tmpfs in a private mount namespace (root, or an
 * unprivileged user namespace).  If neither is possible the test FAILS.
 */
static int enospc_child(void)
{
	char base[] = "/tmp/smp-audit-enospc-XXXXXX", *dir, *vkey = NULL;
	struct audit_verify_report rep;
	struct audit_log *log;
	int r = 0;
	unsigned i;

	if (unshare(CLONE_NEWNS) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return 77;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) <
	    0) /* type ignored; not NULL for valgrind */
		return 77;
	if (!mkdtemp(base))
		return 78;
	if (mount("smp-audit-test", base, "tmpfs", 0, "size=96k,mode=0700") < 0) {
		rmdir(base);
		return 77;
	}
	dir = path_join(base, "log");
	if (audit_log_setup(dir, NULL, &vkey) < 0)
		return 10;
	if (audit_log_open(dir, NULL, &log) < 0)
		return 11;
	for (i = 0; i < 100000 && r == 0; i++)
		r = append_events(log, 1, i);
	if (r != -ENOSPC)
		return 12;
	/* Not recorded, and nothing half-written left behind. */
	(void)audit_log_close(log);
	if (audit_verify(dir, vkey, NULL, NULL, &rep) < 0 || rep.status != AUDIT_VERIFY_INTACT)
		return 13;
	/* A full disk refuses opening (smpd then refuses to run the needle). */
	r = audit_log_open(dir, NULL, &log);
	if (r != -ENOSPC) {
		if (r == 0)
			audit_log_free(log);
		return 14;
	}
	umount(base);
	rmdir(base);
	free(dir);
	free(vkey);
	return 0;
}

static void test_enospc_tmpfs(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(enospc_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		fail_msg("cannot mount a tmpfs (need root or unprivileged user namespaces): ENOSPC untested");
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- journal mirror ---- */

static bool iov_has(const struct audit_journal_msg *m, const char *entry)
{
	for (size_t i = 0; i < m->n_iov; i++)
		if (m->iov[i].iov_len == strlen(entry) &&
		    memcmp(m->iov[i].iov_base, entry, strlen(entry)) == 0)
			return true;
	return false;
}

static void test_journal_fields(void **state)
{
	struct audit_journal_msg m = {};
	uint8_t blob[2] = { 0xde, 0xad };
	struct audit_field f[] = {
		AUDIT_STR("event", "estop"),	 AUDIT_STR("session", "s-0042"),
		AUDIT_STR("device", "SN123"),	 AUDIT_STR("who", ":1.42"),
		AUDIT_UINT("depth_um", 600),	 AUDIT_INT("temp_cdeg", -5),
		AUDIT_BOOL("latched", true),	 AUDIT_BYTES("blob", blob, 2),
		AUDIT_STR("note", "two\nlines"),
	};
	char id[33], want[64];

	(void)state;
	assert_int_equal(audit_journal_build(&m, AUDIT_REC_EVENT, 77, f, 9, NULL), 0);
	assert_int_equal(audit_journal_message_id(AUDIT_REC_EVENT, "estop", id), 0);
	snprintf(want, sizeof(want), "MESSAGE_ID=%s", id);
	assert_true(iov_has(&m, want));
	assert_true(iov_has(&m, "MESSAGE=smp audit: estop session=s-0042 device=SN123 who=:1.42"));
	assert_true(iov_has(&m, "PRIORITY=5"));
	assert_true(iov_has(&m, "SMP_EVENT=estop"));
	assert_true(iov_has(&m, "SMP_RECORD_TYPE=event"));
	assert_true(iov_has(&m, "SMP_SEQ=77"));
	assert_true(iov_has(&m, "SMP_SESSION=s-0042"));
	assert_true(iov_has(&m, "SMP_DEVICE=SN123"));
	assert_true(iov_has(&m, "SMP_DEPTH_UM=600"));
	assert_true(iov_has(&m, "SMP_TEMP_CDEG=-5"));
	assert_true(iov_has(&m, "SMP_LATCHED=true"));
	assert_true(iov_has(&m, "SMP_BLOB=dead"));
	assert_true(iov_has(&m, "SMP_NOTE=two\nlines"));
	assert_false(iov_has(&m, "SMP_EVENT_=estop"));
	assert_int_equal(m.n_iov, 6 + 8);

	/* Library records: their type is the event name; ids differ per namespace. */
	{
		struct audit_field sf[] = { AUDIT_UINT("epoch", 3) };
		char id2[33];

		assert_int_equal(audit_journal_build(&m, AUDIT_REC_SEAL, 78, sf, 1, NULL), 0);
		assert_true(iov_has(&m, "SMP_EVENT=seal"));
		assert_true(iov_has(&m, "SMP_EPOCH=3"));
		assert_true(iov_has(&m, "PRIORITY=6"));
		assert_int_equal(audit_journal_message_id(AUDIT_REC_SEAL, NULL, id), 0);
		assert_int_equal(audit_journal_message_id(AUDIT_REC_EVENT, "seal", id2), 0);
		assert_string_not_equal(id, id2);
	}

	/* With the chain: what a collector verifies; withheld text stays home. */
	{
		uint8_t rec[AUDIT_RECORD_MIN] = { 0 }, log_id[AUDIT_LOG_ID_SIZE], fp[AUDIT_FP_SIZE],
			h[AUDIT_HASH_SIZE];
		const struct audit_journal_chain chain = {
			.log_id = log_id,
			.key_fp = fp,
			.record = rec,
			.record_len = sizeof(rec),
			.hash = h,
		};
		struct audit_field af[] = {
			AUDIT_STR("event", "annotation"),
			AUDIT_STR("session", "s-1"),
			AUDIT_STR("text", "itching at the crown"),
		};
		struct audit_field of[] = {
			AUDIT_STR("event", "override"),
			AUDIT_STR("session", "s-1"),
			AUDIT_STR("reason", "rash last week"),
			AUDIT_STR("who", "op-1"),
		};

		memset(log_id, 0x11, sizeof(log_id));
		memset(fp, 0x22, sizeof(fp));
		memset(h, 0xab, sizeof(h));
		memset(rec + 40, 0xcd, AUDIT_HASH_SIZE);
		assert_int_equal(audit_journal_build(&m, AUDIT_REC_EVENT, 9, f, 9, &chain), 0);
		assert_true(iov_has(&m, "SMPC_LOG_ID=11111111111111111111111111111111"));
		assert_true(iov_has(&m, "SMPC_KEY_FP=2222222222222222"));
		assert_true(iov_has(
			&m,
			"SMPC_CHAIN=abababababababababababababababababababababababababababababababab"));
		assert_int_equal(m.n_iov, 6 + 8 + 4);
		assert_int_equal(m.iov[m.n_iov - 1].iov_len,
				 strlen("SMPC_RECORD=") + 2 * sizeof(rec));

		assert_int_equal(audit_journal_build(&m, AUDIT_REC_EVENT, 10, af, 3, &chain), 0);
		for (size_t i = 0; i < m.n_iov; i++)
			assert_null(memmem(m.iov[i].iov_base, m.iov[i].iov_len, "itching", 7));
		assert_true(iov_has(&m, "SMPC_WITHHELD=text"));
		assert_true(iov_has(
			&m,
			"SMPC_PREV=cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"));
		assert_true(iov_has(&m, "SMP_SESSION=s-1"));
		for (size_t i = 0; i < m.n_iov; i++)
			assert_false(m.iov[i].iov_len > 12 &&
				     memcmp(m.iov[i].iov_base, "SMPC_RECORD=", 12) == 0);

		assert_int_equal(audit_journal_build(&m, AUDIT_REC_EVENT, 11, of, 4, &chain), 0);
		for (size_t i = 0; i < m.n_iov; i++)
			assert_null(memmem(m.iov[i].iov_base, m.iov[i].iov_len, "rash", 4));
		assert_true(iov_has(&m, "SMPC_WITHHELD=reason"));
		assert_true(iov_has(&m, "SMP_WHO=op-1"));
		/* "reason" is withheld only where an operator types it. */
		assert_false(audit_journal_field_withheld(AUDIT_REC_EVENT, "session_end", "reason"));
		assert_false(audit_journal_field_withheld(AUDIT_REC_RECOVERY, "annotation", "text"));
		assert_true(audit_field_withheld("annotation", "text"));
		assert_false(audit_field_withheld("annotation", "session"));
	}
	audit_journal_msg_done(&m);
}

/* Every catalog entry's MESSAGE_ID is the one the mirror sends, and every
 * library record type has an entry. */
static void test_catalog_ids(void **state)
{
	const char *path = getenv("AUDIT_CATALOG");
	char line[512], id[33] = "";
	unsigned entries = 0, record_types = 0;
	FILE *f;

	(void)state;
	if (!path)
		fail_msg("AUDIT_CATALOG is not set (run through meson test)");
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char ns[16], name[64], want[33];
		uint16_t type = AUDIT_REC_EVENT;

		if (strncmp(line, "-- ", 3) == 0) {
			assert_int_equal(sscanf(line, "-- %32s", id), 1);
			continue;
		}
		if (sscanf(line, "Subject: SMP audit %15[a-z]: %63[a-z_]:", ns, name) != 2)
			continue;
		if (strcmp(ns, "record") == 0) {
			type = 0;
			for (uint16_t t = AUDIT_REC_CREATED; t <= AUDIT_REC_RETENTION; t++)
				if (strcmp(audit_record_type_to_string(t), name) == 0)
					type = t;
			assert_true(type != 0);
			record_types++;
		} else
			assert_string_equal(ns, "event");
		assert_int_equal(audit_journal_message_id(type, name, want), 0);
		if (strcmp(id, want) != 0)
			fail_msg("catalog entry for %s %s has id %s, the mirror sends %s", ns, name,
				 id, want);
		entries++;
	}
	fclose(f);
	assert_int_equal(record_types, AUDIT_REC_RETENTION);
	assert_true(entries > 20);
}

/*
 * End to end: a fake journald socket at /run/systemd/journal/socket in a
 * private mount namespace receives the mirrored records.
 */
static int journal_child(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
	char *base = make_tmpdir(), *dir = path_join(base, "log"), *vkey = NULL, buf[65536], id[33],
	     want[64];
	struct audit_log_config cfg;
	struct audit_log *log;
	struct audit_field f[] = { AUDIT_STR("session", "s-journal"), AUDIT_STR("who", "op1") };
	bool saw_start = false, saw_open = false;
	int fd;

	if (unshare(CLONE_NEWNS) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return 77;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("smp-audit-test", "/run", "tmpfs", 0, "size=1m,mode=0755") < 0)
		return 77;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		return 20;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 21;
	audit_log_config_init(&cfg);
	cfg.journal_mirror = true;
	if (audit_log_setup(dir, &cfg, &vkey) < 0 || audit_log_open(dir, &cfg, &log) < 0)
		return 22;
	if (audit_log_append_durable(log, "start", f, 2, NULL) < 0 || audit_log_close(log) < 0)
		return 23;
	if (audit_journal_message_id(AUDIT_REC_EVENT, "start", id) < 0)
		return 24;
	snprintf(want, sizeof(want), "MESSAGE_ID=%s\n", id);
	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf) - 1, 0);

		if (k < 0)
			break;
		buf[k] = 0;
		if (memmem(buf, (size_t)k, "SMP_EVENT=start\n", 16) &&
		    memmem(buf, (size_t)k, "SMP_SESSION=s-journal\n", 22) &&
		    memmem(buf, (size_t)k, "SMP_WHO=op1\n", 12) &&
		    memmem(buf, (size_t)k, want, strlen(want)))
			saw_start = true;
		if (memmem(buf, (size_t)k, "SMP_EVENT=open\n", 15))
			saw_open = true;
	}
	rm_rf(base);
	close(fd);
	free(base);
	free(dir);
	free(vkey);
	if (!saw_start)
		return 25;
	if (!saw_open)
		return 26;
	return 0;
}

static void test_journal_mirror_end_to_end(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(journal_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		fail_msg("cannot build a private /run (need root or user namespaces): journal mirror untested");
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_journal_absent_never_fails(void **state)
{
	struct fixture *fx = *state;
	struct audit_log *log;

	/* Here journald may well be missing: the mirror must not matter. */
	fx->cfg.journal_mirror = true;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 50, 0), 0);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
}

/* ---- recovery ---- */

static void crash_with_records(struct fixture *fx, unsigned n)
{
	struct audit_log *log;

	fx->cfg.seal_every_records = 25;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, n, 0), 0);
	audit_log_free(log);
}

static void test_torn_tail_partial_record(void **state)
{
	struct fixture *fx = *state;
	char *name, *path;
	size_t offs[1024], n;
	struct mem_log m;
	struct collect c = {};
	struct audit_log *log;
	struct audit_verify_report rep;

	crash_with_records(fx, 100);
	memlog_load(&m, fx->dir);
	n = record_offsets(m.f[0].data, m.f[0].size, offs, 1024);
	name = last_file(fx->dir);
	path = path_join(fx->dir, name);
	/* Power cut in the middle of the last record. */
	assert_int_equal(truncate(path, (off_t)m.f[0].size - 7), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_TRUNCATED);
	assert_int_equal(rep.offset, offs[n - 1]);

	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);
	assert_int_equal(c.recoveries, 1);
	assert_int_equal(c.cut_offset, offs[n - 1]);
	assert_int_equal(c.cut_bytes, m.f[0].size - 7 - offs[n - 1]);
	assert_int_equal(c.events, 99);
	memlog_free(&m);
	free(path);
	free(name);
}

static void test_torn_tail_zero_fill(void **state)
{
	struct fixture *fx = *state;
	char *name, *path, zeros[4096] = {};
	struct collect c = {};
	struct audit_log *log;
	int fd;

	crash_with_records(fx, 30);
	name = last_file(fx->dir);
	path = path_join(fx->dir, name);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
	close(fd);
	assert_int_equal(verify_dir(fx).status, AUDIT_VERIFY_TRUNCATED);
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);
	assert_int_equal(c.recoveries, 1);
	assert_int_equal(c.cut_bytes, 4096);
	assert_int_equal(c.events, 30);
	free(path);
	free(name);
}

static void test_damage_not_at_tail_refused(void **state)
{
	struct fixture *fx = *state;
	char *name, *path;
	size_t offs[1024], n;
	off_t before;
	struct mem_log m;
	struct audit_log *log;
	uint8_t b;
	int fd;

	crash_with_records(fx, 60);
	memlog_load(&m, fx->dir);
	n = record_offsets(m.f[0].data, m.f[0].size, offs, 1024);
	assert_true(n > 20);
	name = last_file(fx->dir);
	path = path_join(fx->dir, name);
	before = file_size(fx->dir, name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)offs[10] + 80), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)offs[10] + 80), 1);
	close(fd);
	/* Cutting here would destroy 50 good records: refuse instead. */
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), -EBADMSG);
	assert_int_equal(file_size(fx->dir, name), before);
	memlog_free(&m);
	free(path);
	free(name);
}

static void test_leftover_tmp_removed(void **state)
{
	struct fixture *fx = *state;
	char *p = path_join(fx->dir, "audit-00000000000000ff.smplog.tmp");
	struct audit_log *log;
	int fd;

	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(audit_log_close(log), 0);
	assert_intact(fx);
	free(p);
}

static void test_missing_key_refused(void **state)
{
	struct fixture *fx = *state;
	char *p = path_join(fx->dir, AUDIT_KEY_FILE);
	struct audit_log *log;

	assert_int_equal(unlink(p), 0);
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), -ENOKEY);
	free(p);
}

/* ---- rotation and retention ---- */

static void test_rotation_size_and_age(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;
	struct collect c = {};
	struct mem_log m;
	uint64_t files;

	fx->cfg.max_file_size = 16384;
	fx->cfg.max_file_age_usec = 3600ULL * 1000000;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	assert_int_equal(append_events(log, 1000, 0), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_true(rep.n_files >= 10);
	files = rep.n_files;
	memlog_load(&m, fx->dir);
	for (size_t i = 0; i < m.n; i++)
		assert_true(m.f[i].size <= 16384);
	memlog_free(&m);

	/* Age: an hour later the next tick starts a new file. */
	fx->hooks.now_usec += 3601ULL * 1000000;
	assert_int_equal(audit_log_tick(log), 0);
	assert_int_equal(audit_log_close(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.n_files, files + 1);

	/* Every file ends sealed before the next one starts. */
	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);
	assert_int_equal(c.file_starts, files);
	assert_int_equal(c.prev_type_before_file_start_bad, 0);
}

static void test_retention(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;
	struct collect c = {};
	struct mem_log m;
	char *p;

	fx->cfg.max_file_age_usec = 86400ULL * 1000000;
	fx->cfg.retention_days = 3;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	for (unsigned half_day = 0; half_day < 20; half_day++) {
		assert_int_equal(append_events(log, 20, half_day * 20), 0);
		fx->hooks.now_usec += 43200ULL * 1000000;
		assert_int_equal(audit_log_tick(log), 0);
	}
	assert_int_equal(audit_log_close(log), 0);

	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_true(rep.first_seq > 0);
	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);
	/* Retention records of earlier deletions went with their files; the
	 * one that explains where the log now starts must remain. */
	assert_true(c.retentions >= 1);
	/* 10 days of files, 3 days kept: at most 3-4 daily files remain. */
	memlog_load(&m, fx->dir);
	assert_true(m.n >= 3 && m.n <= 5);

	/* Deleting the oldest file by hand is not retention: detected. */
	p = path_join(fx->dir, m.f[0].name);
	assert_int_equal(unlink(p), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_TAMPERED);
	free(p);
	memlog_free(&m);
}

/* A deletion that fails is no reason to stop the needle: appends go on,
 * the file stays, and the log still verifies. */
static void test_retention_unlink_failure(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;
	struct collect c = {};

	fx->cfg.max_file_age_usec = 86400ULL * 1000000;
	fx->cfg.retention_days = 2;
	fx->hooks.fail_op = AUDIT_IO_UNLINK;
	fx->hooks.fail_errno = EPERM;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	for (unsigned day = 0; day < 8; day++) {
		assert_int_equal(append_events(log, 10, day * 10), 0);
		fx->hooks.now_usec += 86401ULL * 1000000;
		assert_int_equal(audit_log_tick(log), 0);
	}
	assert_int_equal(audit_log_get_error(log), 0);
	assert_int_equal(audit_log_close(log), 0);
	assert_true(fx->hooks.failed > 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.first_seq, 0); /* nothing was deleted */
	assert_int_equal(audit_log_foreach(fx->dir, collect_cb, &c), 0);
	assert_true(c.retentions >= 1); /* but every attempt is recorded */
}

static void test_retention_off_keeps_everything(void **state)
{
	struct fixture *fx = *state;
	struct audit_verify_report rep;
	struct audit_log *log;

	fx->cfg.max_file_age_usec = 86400ULL * 1000000;
	assert_int_equal(audit_log_open(fx->dir, &fx->cfg, &log), 0);
	for (unsigned day = 0; day < 10; day++) {
		assert_int_equal(append_events(log, 5, day * 5), 0);
		fx->hooks.now_usec += 86401ULL * 1000000;
		assert_int_equal(audit_log_tick(log), 0);
	}
	assert_int_equal(audit_log_close(log), 0);
	rep = verify_dir(fx);
	assert_int_equal(rep.status, AUDIT_VERIFY_INTACT);
	assert_int_equal(rep.first_seq, 0);
	assert_int_equal(rep.n_files, 11);
}

int main(int argc, char **argv)
{
	/*
	 * These mount a tmpfs or a private /run: root (or user namespaces)
	 * only, so meson runs them on their own (test-audit-log-root).
	 */
	const struct CMUnitTest root_tests[] = {
		cmocka_unit_test(test_enospc_tmpfs),
		cmocka_unit_test(test_journal_mirror_end_to_end),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_export, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_durability_tickets, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_seal_by_count_and_time, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_clock_set_back, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_next_tick, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_error_rollback, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sync_error_poisons, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_key_write_error, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stale_key_slot_erased, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_error_at_rotation, fx_setup, fx_teardown),
		cmocka_unit_test(test_journal_fields),
		cmocka_unit_test(test_catalog_ids),
		cmocka_unit_test_setup_teardown(test_journal_absent_never_fails, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_partial_record, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_zero_fill, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_damage_not_at_tail_refused, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_leftover_tmp_removed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_missing_key_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rotation_size_and_age, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_retention, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_retention_unlink_failure, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_retention_off_keeps_everything, fx_setup,
						fx_teardown),
	};

	/* AUDIT_TEST_FILTER=test_truncation runs one test (cmocka glob). */
	if (getenv("AUDIT_TEST_FILTER"))
		cmocka_set_test_filter(getenv("AUDIT_TEST_FILTER"));
	if (argc > 1 && strcmp(argv[1], "--root") == 0)
		return cmocka_run_group_tests_name("audit-log-root", root_tests, NULL, NULL);
	return cmocka_run_group_tests_name("audit-log", tests, NULL, NULL);
}
