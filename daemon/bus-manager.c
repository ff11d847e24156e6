/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-manager.c - org.libsmp.Smp1.Manager at /org/libsmp/Smp1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit-sessions.h"
#include "manager.h"

static int prop_api_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
			    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	return sd_bus_message_append(reply, "u", (uint32_t)SMPD_API_VERSION);
}

static int prop_policy_digest(sd_bus *bus, const char *path, const char *iface, const char *prop,
			      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	return sd_bus_message_append(reply, "s", m->policy.digest);
}

/* The healing interval in force (H9), for a client's plan (issue 16). */
static int prop_healing_interval_days(sd_bus *bus, const char *path, const char *iface,
				      const char *prop, sd_bus_message *reply, void *userdata,
				      sd_bus_error *error)
{
	struct manager *m = userdata;

	return sd_bus_message_append(reply, "u", m->policy.healing_interval_days.value);
}

static int prop_audit_ok(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	return sd_bus_message_append(reply, "b", m->audit_error >= 0);
}

static int method_list_devices(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "o");
	for (struct device *d = m->devices; d && r >= 0; d = d->next)
		if (!d->gone)
			r = sd_bus_message_append(reply, "o", d->path);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_list_sessions(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "o");
	for (struct session *s = m->sessions; s && r >= 0; s = s->next)
		r = sd_bus_message_append(reply, "o", s->path);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_begin_session(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct metadata md = { 0 };
	struct session_request req;
	struct session *s;
	struct device *d;
	const char *path;
	int r;

	r = sd_bus_message_read(msg, "o", &path);
	if (r < 0)
		return r;
	r = bus_read_metadata(msg, &md, error);
	if (r < 0)
		return r;
	d = device_find_by_path(m, path);
	if (!d || d->gone)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "no device %s", path);

	r = polkit_verify(m, msg, SMPD_ACTION_OPERATE, method_begin_session, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	if (md.override_reason) {
		r = polkit_verify(m, msg, SMPD_ACTION_OVERRIDE, method_begin_session, m, error);
		if (r <= 0)
			return r < 0 ? r : 1;
	}

	req = bus_session_request(&md);
	r = session_begin(m, d, sd_bus_message_get_sender(msg), &req, md.maker, &s, error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(msg, "o", s->path);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	char err[POLICY_ERROR_MAX];
	int r;

	r = polkit_verify(m, msg, SMPD_ACTION_CONFIGURE, method_reload, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = manager_reload(m, err, sizeof(err));
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_CONFIG,
					 "%s; the last good policy stays in force", err);
	return sd_bus_reply_method_return(msg, NULL);
}

/*
 * VerifyLog, ExportLog, ListPastSessions: reading the whole log can take
 * long; each runs in a child process so that the event loop (lease
 * renewals, monitors, watchdog) never waits for it.  The child writes its
 * result into a pipe or a memfd and exits with 0, or with the errno of the
 * audit library; the job's done callback answers the call from that.
 */
struct verify_job;
/* In the child: write the result to fd; 0 or a negative errno. */
typedef int (*job_work_fn)(struct manager *m, const void *arg, int fd);
/* In smpd, when the child has exited: answer j->call. */
typedef int (*job_done_fn)(struct verify_job *j, const siginfo_t *si);

struct verify_job {
	struct verify_job *next;
	job_done_fn done;
	char format[8]; /* ExportLog */
	struct manager *m;
	sd_bus_message *call;
	sd_event_source *child;
	pid_t pid;
	int fd; /* read end of the result */
};

static void verify_job_free(struct verify_job *j)
{
	struct verify_job **pp;

	for (pp = &j->m->verify_jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	sd_event_source_disable_unref(j->child);
	sd_bus_message_unref(j->call);
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

void bus_manager_free_jobs(struct manager *m)
{
	while (m->verify_jobs) {
		struct verify_job *j = m->verify_jobs;

		kill(j->pid, SIGKILL);
		j->child = sd_event_source_disable_unref(j->child);
		waitpid(j->pid, NULL, 0);
		verify_job_free(j);
	}
}

static const char *verify_status_name(enum audit_verify_status s)
{
	switch (s) {
	case AUDIT_VERIFY_INTACT:
		return "intact";
	case AUDIT_VERIFY_TAMPERED:
		return "tampered";
	case AUDIT_VERIFY_TRUNCATED:
		return "truncated";
	case AUDIT_VERIFY_UNVERIFIABLE:
		return "unverifiable";
	case AUDIT_VERIFY_GAP:
		return "gap";
	}
	return "unknown";
}

static int export_done(struct verify_job *j, const siginfo_t *si)
{
	int64_t count = -1;
	ssize_t n;

	n = read(j->fd, &count, sizeof(count));
	if (si->si_code != CLD_EXITED || si->si_status != 0 || n != (ssize_t)sizeof(count) ||
	    count < 0) {
		sd_bus_reply_method_errorf(j->call, SMPD_ERROR_AUDIT_UNAVAILABLE,
					   "the audit log could not be exported%s%s",
					   si->si_code == CLD_EXITED && si->si_status ? ": " : "",
					   si->si_code == CLD_EXITED && si->si_status ?
						   strerror(si->si_status) :
						   "");
		return 0;
	}
	{
		struct audit_field f[] = {
			AUDIT_STR("who", sd_bus_message_get_sender(j->call) ?
						 sd_bus_message_get_sender(j->call) :
						 ""),
			AUDIT_STR("format", j->format),
			AUDIT_UINT("records", (uint64_t)count),
		};
		manager_audit(j->m, false, "log_exported", f, sizeof(f) / sizeof(f[0]));
	}
	return sd_bus_reply_method_return(j->call, "t", (uint64_t)count);
}

/*
 * ---- ListPastSessions: the sessions as audit_sessions_read() reads them ----
 *
 * The child writes each session as PAST_FIELDS NUL-terminated strings (a
 * string of the log may hold any character but NUL); list_done() turns
 * them into the a{sv} of docs/dbus.md.
 */
enum past_field {
	PAST_ID,
	PAST_CLIENT,
	PAST_OPERATOR,
	PAST_ZONE,
	PAST_ZONES,
	PAST_PIGMENT_LOT,
	PAST_PIGMENT_MAKER,
	PAST_CARTRIDGE,
	PAST_CARTRIDGE_LOT,
	PAST_NEEDLE,
	PAST_DEVICE,
	PAST_STATE,
	PAST_END_REASON,
	PAST_BEGIN,
	PAST_END,
	PAST_NEEDLE_ON, /* t */
	PAST_PATCH_TEST,
	PAST_SCREENING, /* x */
	PAST_FIELDS
};

static const char *const past_keys[PAST_FIELDS] = {
	"Id",
	"Client",
	"Operator",
	"Zone",
	"Zones",
	"PigmentLot",
	"PigmentManufacturer",
	"CartridgeId",
	"CartridgeLot",
	"Needle",
	"Device",
	"State",
	"EndReason",
	"BeginTime",
	"EndTime",
	"NeedleOnTime",
	"PatchTestTime",
	"ScreeningTime",
};

static int past_sessions_write(const char *dir, const struct audit_export_filter *filter, int fd)
{
	struct audit_session_filter sf = {
		.client = filter->client,
		.pigment_lot = filter->pigment_lot,
		.cartridge = filter->cartridge,
		.cartridge_lot = filter->cartridge_lot,
		.since_usec = filter->since_usec,
		.until_usec = filter->until_usec,
	};
	struct audit_session *s = NULL;
	size_t n = 0;
	FILE *f;
	int r;

	r = audit_sessions_read(dir, &sf, &s, &n);
	if (r < 0)
		return r;
	f = fdopen(dup(fd), "w");
	if (!f) {
		audit_sessions_free(s, n);
		return -errno;
	}
	for (size_t i = 0; i < n; i++) {
		const struct audit_session *p = &s[i];

		fprintf(f,
			"%s%c%s%c%s%c%s%c%s%c%s%c%s%c%s%c%s%c%s%c%s%c%s%c%s%c"
			"%" PRIu64 "%c%" PRIu64 "%c%" PRIu64 "%c%" PRId64 "%c%" PRId64 "%c",
			p->id, 0, p->client, 0, p->operator_name, 0, p->zone, 0, p->zones, 0,
			p->pigment_lot, 0, p->pigment_manufacturer, 0, p->cartridge, 0,
			p->cartridge_lot, 0, p->needle, 0, p->device, 0,
			audit_session_state_to_string(p->state), 0, p->end_reason, 0, p->begin_usec,
			0, p->end_usec, 0, p->needle_on_ms * 1000, 0, p->patch_test_time, 0,
			p->screening_time, 0);
	}
	/* The child exits next; freeing keeps valgrind's leak check meaningful. */
	audit_sessions_free(s, n);
	return fclose(f) == 0 ? 0 : -EIO;
}

static int past_append(sd_bus_message *reply, char *const *v)
{
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	for (int k = 0; r >= 0 && k < PAST_FIELDS; k++) {
		if (k == PAST_ZONES) {
			char *rest = v[k], *z;

			r = sd_bus_message_open_container(reply, 'e', "sv");
			if (r >= 0)
				r = sd_bus_message_append(reply, "s", past_keys[k]);
			if (r >= 0)
				r = sd_bus_message_open_container(reply, 'v', "as");
			if (r >= 0)
				r = sd_bus_message_open_container(reply, 'a', "s");
			while (r >= 0 && (z = strsep(&rest, ",")))
				if (z[0])
					r = sd_bus_message_append(reply, "s", z);
			if (r >= 0)
				r = sd_bus_message_close_container(reply);
			if (r >= 0)
				r = sd_bus_message_close_container(reply);
			if (r >= 0)
				r = sd_bus_message_close_container(reply);
		} else if (k >= PAST_PATCH_TEST)
			r = sd_bus_message_append(reply, "{sv}", past_keys[k], "x",
						  (int64_t)strtoll(v[k], NULL, 10));
		else if (k >= PAST_BEGIN)
			r = sd_bus_message_append(reply, "{sv}", past_keys[k], "t",
						  (uint64_t)strtoull(v[k], NULL, 10));
		else
			r = sd_bus_message_append(reply, "{sv}", past_keys[k], "s", v[k]);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

static int list_done(struct verify_job *j, const siginfo_t *si)
{
	sd_bus_message *reply = NULL;
	char *buf = NULL, *p, *end;
	struct stat st;
	int r;

	if (si->si_code != CLD_EXITED || si->si_status != 0)
		return sd_bus_reply_method_errorf(j->call, SMPD_ERROR_AUDIT_UNAVAILABLE,
						  "the audit log could not be read%s%s",
						  si->si_code == CLD_EXITED && si->si_status ? ": " :
											       "",
						  si->si_code == CLD_EXITED && si->si_status ?
							  strerror(si->si_status) :
							  "");
	if (fstat(j->fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1)) ||
	    pread(j->fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return sd_bus_reply_method_errorf(j->call, SMPD_ERROR_AUDIT_UNAVAILABLE,
						  "cannot read the session list");
	}
	buf[st.st_size] = '\0';
	end = buf + st.st_size;
	r = sd_bus_message_new_method_return(j->call, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "a{sv}");
	for (p = buf; r >= 0 && p < end;) {
		char *v[PAST_FIELDS];

		for (int k = 0; k < PAST_FIELDS; k++) {
			if (p >= end) {
				r = -EBADMSG; /* a child that wrote half a session */
				break;
			}
			v[k] = p;
			p += strlen(p) + 1;
		}
		if (r >= 0)
			r = past_append(reply, v);
	}
	free(buf);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		(void)sd_bus_send(NULL, reply, NULL); /* the caller may be gone */
	else
		sd_bus_reply_method_errorf(j->call, SMPD_ERROR_AUDIT_UNAVAILABLE,
					   "cannot build the session list: %s", strerror(-r));
	sd_bus_message_unref(reply);
	return 0;
}

static int verify_done(struct verify_job *j, const siginfo_t *si)
{
	struct manager *m = j->m;
	struct audit_verify_report rep;
	char desc[1024];
	ssize_t n;

	n = read(j->fd, &rep, sizeof(rep));
	if (si->si_code == CLD_EXITED && si->si_status == EINVAL)
		return sd_bus_reply_method_errorf(j->call, SMPD_ERROR_INVALID_ARGUMENT,
						  "not a verification key (smpk1-...)");
	if (si->si_code != CLD_EXITED || si->si_status != 0 || n != (ssize_t)sizeof(rep))
		return sd_bus_reply_method_errorf(j->call, SMPD_ERROR_AUDIT_UNAVAILABLE,
						  "the audit log could not be read for verification%s%s",
						  si->si_code == CLD_EXITED && si->si_status ? ": " :
											       "",
						  si->si_code == CLD_EXITED && si->si_status ?
							  strerror(si->si_status) :
							  "");
	rep.file[sizeof(rep.file) - 1] = '\0';
	rep.reason[sizeof(rep.reason) - 1] = '\0';
	if (rep.status == AUDIT_VERIFY_INTACT)
		snprintf(desc, sizeof(desc),
			 "intact: %" PRIu64 " records in %" PRIu64 " files, %" PRIu64 " seals; "
			 "%" PRIu64 " records after the last seal are chained but not yet sealed",
			 rep.n_records, rep.n_files, rep.n_seals, rep.unsealed_records);
	else
		snprintf(desc, sizeof(desc),
			 "%s: %s (file %s, offset %" PRIu64 ", record %" PRIu64 ")",
			 verify_status_name(rep.status), rep.reason, rep.file, rep.offset, rep.seq);
	{
		struct audit_field f[] = {
			AUDIT_STR("who", sd_bus_message_get_sender(j->call) ?
						 sd_bus_message_get_sender(j->call) :
						 ""),
			AUDIT_STR("status", verify_status_name(rep.status)),
			AUDIT_UINT("records", rep.n_records),
		};
		manager_audit(m, false, "log_verified", f, sizeof(f) / sizeof(f[0]));
	}
	return sd_bus_reply_method_return(j->call, "us", (uint32_t)rep.status, desc);
}

static int job_exited(sd_event_source *s, const siginfo_t *si, void *userdata)
{
	struct verify_job *j = userdata;

	j->done(j, si);
	verify_job_free(j);
	return 0;
}

/*
 * In a job's child, before any work: it must neither outlive smpd nor hold
 * anything of smpd's (issue 14 item 5).  smpd's bus connection and device
 * links are descriptors the child inherited: held by a child, a SIGKILLed
 * smpd would stay on the bus under org.libsmp.Smp1 and on the device (the
 * host does not leave, smpusb's owner-closed STOP waits) until the job
 * ends.  So every descriptor but the standard streams, the result (out)
 * and the caller's file (keep, ExportLog) is closed; the child dies with
 * smpd (PR_SET_PDEATHSIG, and the getppid() check covers an smpd that died
 * before it was set); and it runs as the batch job it is, not at smpd's
 * real-time priority: SCHED_OTHER, nice 10, best-effort I/O at the lowest
 * level.  Returns 0, or a positive errno for the child's exit status.
 */
static int job_child_setup(pid_t parent, int out, int keep)
{
	struct sched_param sp = { .sched_priority = 0 };
	unsigned lo = 3, fds[2];
	sigset_t all;
	int n = 0;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return errno;
	if (getppid() != parent)
		_exit(ECHILD); /* smpd is gone already */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL); /* smpd blocks what sd-event handles */

	if (out > 2)
		fds[n++] = (unsigned)out;
	if (keep > 2 && keep != out)
		fds[n++] = (unsigned)keep;
	if (n == 2 && fds[0] > fds[1]) {
		unsigned t = fds[0];

		fds[0] = fds[1];
		fds[1] = t;
	}
	for (int i = 0; i <= n; i++) {
		unsigned hi = i < n ? fds[i] : ~0U;

		if (hi > lo && syscall(SYS_close_range, lo, hi - 1, 0) < 0) {
			/* kernels before 5.9: one at a time */
			long max = sysconf(_SC_OPEN_MAX);

			for (unsigned fd = lo; fd < hi && (max < 0 || fd < (unsigned long)max); fd++)
				(void)close((int)fd);
		}
		lo = hi + 1;
	}

	if (sched_setscheduler(0, SCHED_OTHER, &sp) < 0)
		return errno;
	if (setpriority(PRIO_PROCESS, 0, 10) < 0)
		return errno;
	/* IOPRIO_WHO_PROCESS, IOPRIO_CLASS_BE level 7; best effort: the job
	 * runs on where the kernel has no I/O priorities */
	(void)syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 7);
	return 0;
}

/*
 * Start work(m, arg, fd) in a child for the call msg; done answers it.  The
 * result goes through a pipe, or with use_memfd through a memfd that done
 * reads from the start (for results larger than a pipe holds).  On success
 * the call is answered later (return 1 from the method handler).
 */
static int job_start(struct manager *m, sd_bus_message *msg, bool use_memfd, int keep_fd,
		     job_work_fn work, const void *arg, job_done_fn done, struct verify_job **ret)
{
	struct verify_job *j = NULL;
	pid_t parent = getpid();
	int rfd, wfd, r;

	if (use_memfd) {
		rfd = wfd = memfd_create("smpd-job", MFD_CLOEXEC);
		if (rfd < 0)
			return -errno;
	} else {
		int pfd[2];

		if (pipe2(pfd, O_CLOEXEC) < 0)
			return -errno;
		rfd = pfd[0];
		wfd = pfd[1];
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		r = -ENOMEM;
		goto fail;
	}
	j->pid = fork();
	if (j->pid < 0) {
		r = -errno;
		free(j);
		goto fail;
	}
	if (j->pid == 0) {
		/* The child's copy of the job is not used here; free it so that
		 * valgrind's leak check of the child stays quiet. */
		free(j);
		if (rfd != wfd)
			close(rfd);
		r = job_child_setup(parent, wfd, keep_fd);
		if (r > 0)
			_exit(r < 256 ? r : EIO);
		r = work(m, arg, wfd);
		_exit(r < 0 ? (-r < 256 ? -r : EIO) : 0);
	}
	if (rfd != wfd)
		close(wfd);
	j->m = m;
	j->fd = rfd;
	j->done = done;
	j->call = sd_bus_message_ref(msg);
	j->next = m->verify_jobs;
	m->verify_jobs = j;
	r = sd_event_add_child(m->event, &j->child, j->pid, WEXITED, job_exited, j);
	if (r < 0) {
		kill(j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
		verify_job_free(j);
		return r;
	}
	if (ret)
		*ret = j;
	return 1;

fail:
	close(rfd);
	if (rfd != wfd)
		close(wfd);
	return r;
}

static int verify_work(struct manager *m, const void *arg, int fd)
{
	struct audit_verify_report rep;
	int r;

	r = audit_verify(m->audit_dir, arg, NULL, NULL, &rep);
	if (r < 0)
		return r;
	return write(fd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : -EIO;
}

static int method_verify_log(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	const char *key;
	int r;
	size_t len;

	r = sd_bus_message_read(msg, "s", &key);
	if (r < 0)
		return r;
	len = strlen(key);
	if (len == 0 || len > 512 || !safety_text_valid(key) || strchr(key, ' '))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "not a verification key (smpk1-...)");
	r = polkit_verify(m, msg, SMPD_ACTION_AUDIT, method_verify_log, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;

	return job_start(m, msg, false, -1, verify_work, key, verify_done, NULL);
}

struct export_args {
	enum audit_export_format fmt;
	const struct audit_export_filter *filter;
	int fd; /* the caller's file */
};

static int export_work(struct manager *m, const void *arg, int fd)
{
	const struct export_args *a = arg;
	int out = dup(a->fd);
	FILE *f = out >= 0 ? fdopen(out, "w") : NULL;
	int64_t n = -EIO;

	if (f) {
		n = audit_export(m->audit_dir, a->fmt, a->filter, f);
		if (fclose(f) != 0 && n >= 0)
			n = -errno;
	} else if (out >= 0) {
		close(out);
	}
	if (n < 0)
		return n < -255 ? -EIO : (int)n;
	return write(fd, &n, sizeof(n)) == (ssize_t)sizeof(n) ? 0 : -EIO;
}

static int method_export_log(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct audit_export_filter filter = { 0 };
	enum audit_export_format fmt;
	struct verify_job *j = NULL;
	const char *format;
	struct export_args args;
	int fd, fl, r;

	r = bus_read_export_filter(msg, &filter, error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(msg, "sh", &format, &fd);
	if (r < 0)
		return r;
	if (strcmp(format, "json") == 0)
		fmt = AUDIT_EXPORT_JSON;
	else if (strcmp(format, "csv") == 0)
		fmt = AUDIT_EXPORT_CSV;
	else
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "unknown format \"%s\" (json or csv)", format);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || ((fl & O_ACCMODE) != O_WRONLY && (fl & O_ACCMODE) != O_RDWR))
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "the file descriptor is not open for writing");
	r = polkit_verify(m, msg, SMPD_ACTION_AUDIT, method_export_log, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;

	args.fmt = fmt;
	args.filter = &filter;
	args.fd = fd;
	r = job_start(m, msg, false, fd, export_work, &args, export_done, &j);
	if (r > 0 && j)
		snprintf(j->format, sizeof(j->format), "%s", format);
	return r;
}

static int list_work(struct manager *m, const void *arg, int fd)
{
	return past_sessions_write(m->audit_dir, arg, fd);
}

static int method_list_past_sessions(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct audit_export_filter filter = { 0 };
	int r;

	r = bus_read_export_filter(msg, &filter, error);
	if (r < 0)
		return r;
	if (filter.session)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT,
					 "ListPastSessions filters by Client, PigmentLot, CartridgeId, "
					 "CartridgeLot, Since and Until");
	r = polkit_verify(m, msg, SMPD_ACTION_AUDIT, method_list_past_sessions, m, error);
	if (r <= 0)
		return r < 0 ? r : 1;

	return job_start(m, msg, true, -1, list_work, &filter, list_done, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("APIVersion", "u", prop_api_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("PolicyDigest", "s", prop_policy_digest, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("HealingIntervalDays", "u", prop_healing_interval_days, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("AuditAvailable", "b", prop_audit_ok, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_METHOD_WITH_ARGS("ListDevices", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", devices),
				method_list_devices, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListSessions", SD_BUS_NO_ARGS, SD_BUS_RESULT("ao", sessions),
				method_list_sessions, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("BeginSession", SD_BUS_ARGS("o", device, "a{sv}", metadata),
				SD_BUS_RESULT("o", session), method_begin_session,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("VerifyLog", SD_BUS_ARGS("s", verification_key),
				SD_BUS_RESULT("u", status, "s", description), method_verify_log,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ExportLog", SD_BUS_ARGS("a{sv}", filter, "s", format, "h", fd),
				SD_BUS_RESULT("t", records), method_export_log,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListPastSessions", SD_BUS_ARGS("a{sv}", filter),
				SD_BUS_RESULT("aa{sv}", sessions), method_list_past_sessions,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("DeviceAdded", SD_BUS_ARGS("o", device), 0),
	SD_BUS_SIGNAL_WITH_ARGS("DeviceRemoved", SD_BUS_ARGS("o", device), 0),
	SD_BUS_SIGNAL_WITH_ARGS("SessionBegun", SD_BUS_ARGS("o", session), 0),
	SD_BUS_VTABLE_END,
};

int bus_manager_register(struct manager *m)
{
	return sd_bus_add_object_vtable(m->bus, NULL, SMPD_PATH, SMPD_IFACE_MANAGER, manager_vtable,
					m);
}
