/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager.c - state owned by smpd: policy, audit log, interlock store,
 * devices and sessions.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "audit-sessions.h"
#include "journal.h"
#include "manager.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

#define RECONNECT_USEC (500 * 1000ULL)
#define AUDIT_TICK_USEC (1000 * 1000ULL)

/*
 * H12 on a filling disk.  A full filesystem does not fail the log's next
 * record: the last block of the log file takes records until it is full
 * (a 4 KiB tmpfs page held 6.7 s of telemetry summaries in the fault
 * matrix, docs/reliability.md), and when a record then fails, the records
 * of the stop it causes (fault, stop, session_end) fail with it.  So the
 * log counts as unwritable once its filesystem has less than this left
 * (f_bavail: what an unprivileged writer gets), checked on every audit
 * tick (1 s while a device is attached) and before START: the needle
 * stops while the log still takes the record that says why.
 */
#define AUDIT_MIN_FREE_BYTES (64 * 1024ULL)

/*
 * The audit library mirrors every record it writes to journald
 * (struct audit_log_config.journal_mirror: SMP_<KEY> fields and a MESSAGE_ID per
 * event, `journalctl SMP_SESSION=...`).  A record the log could not take
 * is sent here instead, with the same SMP_<KEY> fields, so that the
 * administrator still sees what happened after the log failed.  Best
 * effort: the audit log is the record.
 */
static void journal_mirror(const char *event, const struct audit_field *fields, size_t n_fields)
{
	struct iovec iov[2 + AUDIT_FIELDS_MAX];
	char *bufs[2 + AUDIT_FIELDS_MAX];
	size_t n = 0;

	if (n_fields > AUDIT_FIELDS_MAX)
		n_fields = AUDIT_FIELDS_MAX;
	if (asprintf(&bufs[n], "MESSAGE=smpd audit: %s", event) < 0)
		return;
	n++;
	if (asprintf(&bufs[n], "SMP_EVENT=%s", event) < 0)
		goto out;
	n++;
	for (size_t i = 0; i < n_fields; i++) {
		char key[AUDIT_KEY_MAX + 1];
		int k;

		/* Free text an operator typed stays on the workstation. */
		if (audit_field_withheld(event, fields[i].key))
			continue;

		for (k = 0; k < AUDIT_KEY_MAX && fields[i].key[k]; k++)
			key[k] = (char)(fields[i].key[k] >= 'a' && fields[i].key[k] <= 'z' ?
						fields[i].key[k] - 'a' + 'A' :
						fields[i].key[k]);
		key[k] = '\0';
		switch (fields[i].type) {
		case AUDIT_FIELD_STRING:
			k = asprintf(&bufs[n], "SMP_%s=%s", key, fields[i].s);
			break;
		case AUDIT_FIELD_INT:
			k = asprintf(&bufs[n], "SMP_%s=%" PRId64, key, fields[i].i);
			break;
		case AUDIT_FIELD_UINT:
			k = asprintf(&bufs[n], "SMP_%s=%" PRIu64, key, fields[i].u);
			break;
		case AUDIT_FIELD_BOOL:
			k = asprintf(&bufs[n], "SMP_%s=%d", key, fields[i].b);
			break;
		default:
			continue;
		}
		if (k < 0)
			goto out;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = strlen(bufs[i]) };
	sd_journal_sendv(iov, (int)n);
out:
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
}

/* The log cannot be written: it stays failed until smpd restarts (H12). */
static void audit_failed(struct manager *m, int r)
{
	m->audit_error = r;
	smpd_log(LOG_ERR, NULL, "the audit log cannot be written: %s; stopping every needle",
		 strerror(-r));
	for (struct device *d = m->devices; d; d = d->next)
		if (!d->gone)
			device_trip(d, MONITOR_AUDIT_FAILED, "the audit log cannot be written");
	sd_bus_emit_properties_changed(m->bus, SMPD_PATH, SMPD_IFACE_MANAGER, "AuditAvailable", NULL);
}

int manager_audit(struct manager *m, bool durable, const char *event,
		  const struct audit_field *fields, size_t n_fields)
{
	int r;

	if (m->audit_error < 0) {
		journal_mirror(event, fields, n_fields);
		return m->audit_error;
	}
	if (!m->audit)
		r = -EBADF;
	else if (durable)
		r = audit_log_append_durable(m->audit, event, fields, n_fields, NULL);
	else
		r = audit_log_append(m->audit, event, fields, n_fields, NULL);
	if (r == -EINVAL && m->audit && audit_log_get_error(m->audit) == 0) {
		/* A field the log refused (not UTF-8, too long): the record is
		 * ours to fix, the log is fine.  Say so without the fields. */
		struct audit_field f[] = { AUDIT_STR("dropped_event", event) };

		smpd_log(LOG_ERR, NULL, "audit record %s refused (invalid field)", event);
		r = audit_log_append(m->audit, "invalid_record", f, 1, NULL);
	}
#ifdef SMP_MUTATION_DM_LOG_FAILSAFE
	r = 0; /* mutant: a record the log could not take counts as written */
#endif
	if (r >= 0) {
		manager_arm_audit_timer(m);
		return 0;
	}

	/* H12: no record, no needle. */
	journal_mirror(event, fields, n_fields);
	audit_failed(m, r);
	return r;
}

int manager_check_audit_space(struct manager *m)
{
	struct statvfs sv;
	uint64_t avail;

#ifdef SMP_MUTATION_DM_LOG_FAILSAFE
	return 0; /* mutant: a log that cannot take records counts as writable */
#endif
	if (m->audit_error < 0)
		return m->audit_error;
	if (!m->audit || !m->audit_dir || statvfs(m->audit_dir, &sv) < 0)
		return 0; /* the records themselves will tell */
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (avail >= AUDIT_MIN_FREE_BYTES)
		return 0;
	{
		struct audit_field f[] = {
			AUDIT_STR("directory", m->audit_dir),
			AUDIT_UINT("free_bytes", avail),
			AUDIT_UINT("min_free_bytes", AUDIT_MIN_FREE_BYTES),
		};

		/* the last record the log takes: best effort, it may not fit */
		(void)audit_log_append_durable(m->audit, "audit_space_low", f,
					       sizeof(f) / sizeof(f[0]), NULL);
	}
	smpd_log(LOG_WARNING, NULL,
		 "the audit log's filesystem (%s) has %" PRIu64
		 " bytes left, less than the %llu the log keeps in reserve",
		 m->audit_dir, avail, AUDIT_MIN_FREE_BYTES);
	audit_failed(m, -ENOSPC);
	return -ENOSPC;
}

/*
 * Where a new log's verification key K0 goes (docs/audit-log.md): a file
 * only the administrator (root) and smpd can read, created before the log
 * so that a log is never made whose key could not be handed over.  Never
 * the journal: whoever reads K0 can forge the whole log.  Returns the
 * open file (O_EXCL: an existing file may be the key of an earlier log
 * nobody has taken yet, it is never overwritten).
 */
static int key_file_create(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	struct stat st;

	/* An empty file of ours holds no key: a creation cut short (crash,
	 * power loss) before the log was made.  It must not block every
	 * later start. */
	if (fd < 0 && errno == EEXIST && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == 0 && st.st_uid == geteuid() && unlink(path) == 0)
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0) {
		int r = -errno;

		if (r == -EEXIST)
			smpd_log(LOG_ERR, NULL,
				 "%s exists (the key of an earlier audit log?); "
				 "take it offline and remove it, then start smpd again",
				 path);
		else
			smpd_log(LOG_ERR, NULL, "cannot create %s: %s", path, strerror(-r));
		return r;
	}
	return fd;
}

static int key_file_write(int fd, const char *path, const char *key)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s\n", key);
	int r = 0;

	if (n < 0 || (size_t)n >= sizeof(line))
		r = -EINVAL;
	else if (write(fd, line, (size_t)n) != n || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	explicit_bzero(line, sizeof(line));
	if (r < 0)
		smpd_log(LOG_ERR, NULL, "cannot write %s: %s", path, strerror(-r));
	return r;
}

static int open_audit(struct manager *m)
{
	struct audit_log_config cfg;
	char *key = NULL;
	int fd = -1, r;

	/* The library's defaults, the site's retention and sealing ([Audit]). */
	audit_log_config_init(&cfg);
	cfg.journal_mirror = true;
	cfg.retention_days = m->policy.audit_retention_days.value;
	cfg.seal_every_records = m->policy.audit_seal_records.value;
	cfg.seal_every_usec = (uint64_t)m->policy.audit_seal_s.value * 1000000ULL;

	r = audit_log_open(m->audit_dir, &cfg, &m->audit);
	if (r != -ENOENT)
		return r;

	if (m->audit_key_file) {
		fd = key_file_create(m->audit_key_file);
		if (fd < 0)
			return fd;
	}
	r = audit_log_setup(m->audit_dir, &cfg, &key);
	if (r < 0) {
		if (fd >= 0) {
			close(fd);
			unlink(m->audit_key_file);
		}
		return r;
	}
	if (fd >= 0) {
		errno = 0;
		r = key_file_write(fd, m->audit_key_file, key);
		if (close(fd) < 0 && r >= 0)
			r = -errno;
		if (r >= 0)
			smpd_log(LOG_NOTICE, NULL,
				 "created the audit log in %s; its verification key "
				 "is in %s: keep it offline, then remove the file",
				 m->audit_dir, m->audit_key_file);
	} else {
		smpd_log(LOG_NOTICE, NULL,
			 "created the audit log in %s; its verification key, "
			 "to be kept offline (shown once): %s",
			 m->audit_dir, key);
	}
	explicit_bzero(key, strlen(key));
	free(key);
	if (r < 0)
		return r;
	return audit_log_open(m->audit_dir, &cfg, &m->audit);
}

int manager_new(sd_event *e, sd_bus *bus, const char *config_dir, const char *state_dir,
		const char *audit_key_file, struct manager **ret)
{
	struct manager *m;
	char err[POLICY_ERROR_MAX];
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->event = sd_event_ref(e);
	m->bus = sd_bus_ref(bus);
	m->config_dir = strdup(config_dir);
	m->state_dir = strdup(state_dir);
	if (audit_key_file)
		m->audit_key_file = strdup(audit_key_file);
	if (!m->config_dir || !m->state_dir || (audit_key_file && !m->audit_key_file) ||
	    asprintf(&m->audit_dir, "%s/audit", state_dir) < 0) {
		m->audit_dir = NULL;
		manager_free(m);
		return -ENOMEM;
	}

	/* Without a valid policy the daemon does not start: nothing is safe. */
	r = policy_load(config_dir, &m->policy, err, sizeof(err));
	if (r < 0) {
		smpd_log(LOG_ERR, NULL, "%s", err);
		manager_free(m);
		return r;
	}
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		smpd_log(LOG_ERR, NULL, "cannot create %s: %m", state_dir);
		manager_free(m);
		return r;
	}
	r = store_open(state_dir, &m->store);
	if (r < 0) {
		smpd_log(LOG_ERR, NULL, "cannot open the interlock state in %s: %s", state_dir,
			 strerror(-r));
		manager_free(m);
		return r;
	}
	r = open_audit(m);
	if (r < 0) {
		smpd_log(LOG_ERR, NULL, "cannot open the audit log in %s: %s", m->audit_dir,
			 strerror(-r));
		manager_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

static void arm_audit_timer(struct manager *m, uint64_t base);

static int audit_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	uint64_t now;
	int r;

	manager_check_audit_space(m); /* first: its record must still fit */
	for (struct device *d = m->devices; d; d = d->next)
		device_audit_tick(d);
	if (m->audit && m->audit_error >= 0) {
		r = audit_log_tick(m->audit);
		if (r < 0)
			manager_audit(m, false, "tick_failed", NULL, 0);
	}
	/* on its own schedule: a late tick does not postpone the next one */
	if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0 || usec + AUDIT_TICK_USEC <= now)
		usec = 0;
	arm_audit_timer(m, usec);
	return 0;
}

/*
 * The audit timer runs only when there is work (no wakeups when
 * idle without a device): once a second while a device is attached (its
 * telemetry summary records), else once, when the log's next time-based
 * seal (SealEvery after the last seal, with records pending) or rotation
 * by age is due.  Called after every record and every tick; an earlier
 * deadline already armed is kept, so frequent records never postpone it.
 * base: the time the delay counts from (the tick's nominal time), 0 for now.
 */
void manager_arm_audit_timer(struct manager *m)
{
	arm_audit_timer(m, 0);
}

static void arm_audit_timer(struct manager *m, uint64_t base)
{
	uint64_t delay = UINT64_MAX, now, t;
	int r;

	for (struct device *d = m->devices; d; d = d->next)
		if (!d->gone) {
			delay = AUDIT_TICK_USEC;
			break;
		}
	if (m->audit && m->audit_error >= 0 && audit_log_next_tick(m->audit, &t) > 0 && t < delay)
		delay = t;
	if (!m->audit_timer) {
		if (delay == UINT64_MAX)
			return;
		/*
		 * 1 ms accuracy: accuracy 0 means sd-event's default of 250 ms,
		 * and this tick is a safety check (the log's free space, H12)
		 * whose period is a stop bound (docs/reliability.md disk-full).
		 */
		r = sd_event_add_time_relative(m->event, &m->audit_timer, CLOCK_MONOTONIC, delay,
					       1000, audit_timer_handler, m);
		if (r < 0) {
			smpd_log(LOG_ERR, NULL, "cannot arm the audit timer: %s", strerror(-r));
			return;
		}
		/*
		 * Above the telemetry input (IMPORTANT + 10, device.c): sd-event
		 * dispatches one source per iteration, and this safety check
		 * must not wait behind a backlog of 1 kHz telemetry on a
		 * starved host.
		 */
		sd_event_source_set_priority(m->audit_timer, SD_EVENT_PRIORITY_IMPORTANT + 5);
		sd_event_source_set_enabled(m->audit_timer, SD_EVENT_ONESHOT);
		return;
	}
	if (delay == UINT64_MAX) {
		sd_event_source_set_enabled(m->audit_timer, SD_EVENT_OFF);
		return;
	}
	if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
		return;
	if (base && base < now && delay == AUDIT_TICK_USEC)
		now = base;
	t = delay > UINT64_MAX - now ? UINT64_MAX - 1 : now + delay;
	{
		int enabled = SD_EVENT_OFF;
		uint64_t armed;

		if (sd_event_source_get_enabled(m->audit_timer, &enabled) >= 0 &&
		    enabled != SD_EVENT_OFF &&
		    sd_event_source_get_time(m->audit_timer, &armed) >= 0 && armed <= t)
			return;
	}
	sd_event_source_set_time(m->audit_timer, t);
	sd_event_source_set_enabled(m->audit_timer, SD_EVENT_ONESHOT);
}

/*
 * A session that the last run of smpd left open was cut off by a crash
 * (an orderly stop ends every session on record, manager_stop_all()):
 * record its end now, once, so that every reader sees the same end
 * (docs/audit-log.md, "Sessions").  Reads the whole log: the cost of a
 * start grows with the log (docs/benchmarks.md).
 */
static int record_crashed_sessions(struct manager *m)
{
	struct audit_session *s = NULL;
	size_t n = 0;
	int r;

	if (!m->audit || m->audit_error < 0)
		return 0;
	r = audit_sessions_read(m->audit_dir, NULL, &s, &n);
	if (r < 0) {
		smpd_log(LOG_WARNING, NULL,
			 "cannot read the sessions of the audit log to find those a "
			 "crash cut off: %s, ignoring",
			 strerror(-r));
		return 0;
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct audit_field f[] = {
			AUDIT_STR("session", s[i].id),
			AUDIT_STR("client", s[i].client),
			AUDIT_STR("device", s[i].device),
			AUDIT_STR("reason", AUDIT_REASON_DAEMON_CRASHED),
			/* the needle time was never recorded; the telemetry has it */
			AUDIT_UINT("needle_on_ms", 0),
			AUDIT_UINT("found_at_seq", s[i].end_seq),
		};

		if (s[i].end_inferred && s[i].state == AUDIT_SESSION_DAEMON_CRASHED)
			r = manager_audit(m, true, "session_end", f, sizeof(f) / sizeof(f[0]));
	}
	audit_sessions_free(s, n);
	return r < 0 ? r : 0;
}

int manager_start(struct manager *m)
{
	int r;

	r = bus_manager_register(m);
	if (r < 0)
		return r;
	r = record_crashed_sessions(m);
	if (r < 0)
		return r;
	{
		struct audit_field f[] = {
			AUDIT_STR("version", SMPD_VERSION),
			AUDIT_STR("config_dir", m->config_dir),
			AUDIT_STR("policy_digest", m->policy.digest),
			AUDIT_UINT("policy_files", m->policy.n_files),
		};
		r = manager_audit(m, true, "daemon_start", f, sizeof(f) / sizeof(f[0]));
		if (r < 0)
			return r;
	}
	return 0;
}

/* SIGHUP and Reload(): both are logged here (journal.c), with their outcome. */
int manager_reload(struct manager *m, char *err, size_t errsz)
{
	struct policy p;
	int r;

	r = policy_load(m->config_dir, &p, err, errsz);
	if (r < 0) {
		struct audit_field f[] = {
			AUDIT_STR("error", err),
			AUDIT_STR("policy_digest", m->policy.digest),
		};
		manager_audit(m, true, "policy_reload_failed", f, sizeof(f) / sizeof(f[0]));
		smpd_log_reload(NULL, err);
		return r;
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("old_policy_digest", m->policy.digest),
			AUDIT_STR("policy_digest", p.digest),
			AUDIT_UINT("policy_files", p.n_files),
		};
		r = manager_audit(m, true, "policy_reload", f, sizeof(f) / sizeof(f[0]));
		if (r < 0) {
			snprintf(err, errsz, "the audit log cannot be written: %s", strerror(-r));
			smpd_log_reload(NULL, err);
			return r;
		}
	}
	m->policy = p;
	smpd_log_reload(m->policy.digest, NULL);
	sd_bus_emit_properties_changed(m->bus, SMPD_PATH, SMPD_IFACE_MANAGER, "PolicyDigest",
				       "HealingIntervalDays", NULL);
	/*
	 * The controllers apply it at once: a running needle outside it
	 * stops, open sessions follow the new session limits.
	 */
	for (struct device *d = m->devices; d; d = d->next) {
		if (d->gone)
			continue;
		device_limits_changed(d);
		controller_policy_reloaded(&d->ctl, now_monotonic_us());
		device_run(d);
		bus_device_emit_changed(d, "Limits", "LeaseMs", NULL);
		bus_device_emit_changed(d, "ClientTimeoutMs", NULL);
	}
	for (struct session *s = m->sessions; s; s = s->next)
		if (s->active)
			sd_bus_emit_properties_changed(m->bus, s->path, SMPD_IFACE_SESSION,
						       "MaxDuration", "MaxNeedleOn", NULL);
	return 0;
}

void manager_stop_all(struct manager *m, const char *reason)
{
	for (struct device *d = m->devices; d; d = d->next)
		if (controller_needle_may_run(&d->ctl))
			device_stop(d, "smpd", reason, NULL);
	/* An orderly stop ends every open session on record, before
	 * manager_free() seals the log (docs/audit-log.md, "Sessions"). */
	for (struct session *s = m->sessions; s; s = s->next)
		if (s->active)
			session_end(s, AUDIT_REASON_DAEMON_STOPPED);
}

/* Attach the simulator serving path unless it is attached. */
static void reconnect_one(struct manager *m, const char *path)
{
	struct backend *b;
	int r;

	for (struct device *d = m->devices; d; d = d->next)
		if (!d->gone && strcmp(d->backend->kind, "socket") == 0 &&
		    strcmp(d->backend->address, path) == 0)
			return; /* attached */
	r = backend_socket_open(path, &b);
	if (r >= 0) {
		r = device_new(m, b, NULL);
		if (r < 0) {
			smpd_log(LOG_WARNING, NULL, "device on %s refused: %s", path, strerror(-r));
			backend_free(b);
		}
	}
}

static int reconnect_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;

	for (unsigned i = 0; i < m->n_sim_sockets; i++)
		reconnect_one(m, m->sim_sockets[i]);
	sd_event_source_set_time(s, usec + RECONNECT_USEC);
	return 0;
}

int manager_attach_socket(struct manager *m, const char *path)
{
	int r;

	if (m->n_sim_sockets >= SMPD_SIM_SOCKETS_MAX)
		return -E2BIG;
	m->sim_sockets[m->n_sim_sockets] = strdup(path);
	if (!m->sim_sockets[m->n_sim_sockets])
		return -ENOMEM;
	m->n_sim_sockets++;
	if (m->reconnect_timer)
		return 0;
	/* Try at once, then keep watching for unplug/replug of the simulator. */
	r = sd_event_add_time_relative(m->event, &m->reconnect_timer, CLOCK_MONOTONIC, 0, 0,
				       reconnect_handler, m);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(m->reconnect_timer, SD_EVENT_ON);
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	while (m->devices) {
		struct device *d = m->devices;

		m->devices = d->next;
		d->next = NULL;
		device_settle(d); /* manager_stop_all()'s stops, with their records */
		if (controller_needle_may_run(&d->ctl) && d->io) {
			struct devio_op op = { .req.type = SMPP_T_STOP };

			devio_set_timeout(d->io, 250);
			devio_call(d->io, &op);
		}
		device_free(d);
	}
	while (m->sessions) {
		struct session *s = m->sessions;

		m->sessions = s->next;
		session_free(s);
	}
	polkit_free_all(m);
	bus_manager_free_jobs(m);
	manager_udev_stop(m);
	sd_event_source_disable_unref(m->audit_timer);
	sd_event_source_disable_unref(m->reconnect_timer);
	sd_event_source_disable_unref(m->watchdog_timer);
	if (m->audit) {
		struct audit_field f[] = { AUDIT_STR("reason", "shutdown") };

		if (m->audit_error >= 0)
			audit_log_append_durable(m->audit, "daemon_stop", f, 1, NULL);
		if (m->audit_error >= 0 && audit_log_get_error(m->audit) == 0)
			audit_log_close(m->audit);
		else
			audit_log_free(m->audit);
	}
	store_free(m->store);
	sd_bus_unref(m->bus);
	sd_event_unref(m->event);
	free(m->config_dir);
	free(m->state_dir);
	free(m->audit_dir);
	free(m->audit_key_file);
	for (unsigned i = 0; i < m->n_sim_sockets; i++)
		free(m->sim_sockets[i]);
	free(m);
	return NULL;
}
