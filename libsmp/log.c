/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libsmp: the audit log, read directly through the audit library (not
 * through smpd), so that an auditor can check a copy offline without
 * trusting the daemon that wrote it.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "libsmp-private.h"

#include "audit-log.h"
#include "audit-sessions.h"

static const char *log_dir(const char *dir)
{
	return dir ? dir : SMP_LOG_DEFAULT_DIR;
}

struct progress_ctx {
	smp_log_progress fn;
	void *userdata;
};

static void progress_cb(uint64_t done, uint64_t total, void *userdata)
{
	struct progress_ctx *p = userdata;

	p->fn(done, total, p->userdata);
}

/* smp_log_verify()'s status and description of a report. */
static int verify_result(const struct audit_verify_report *report, char **ret_description)
{
	const struct audit_verify_report rep = *report;
	char *desc = NULL;
	int r;

	if (ret_description) {
		if (rep.status == AUDIT_VERIFY_INTACT)
			r = asprintf(&desc,
				     "intact: %" PRIu64 " records in %" PRIu64 " files, %" PRIu64
				     " seals, last sealed record %" PRIu64 ", %" PRIu64
				     " records after it not yet sealed%s",
				     rep.n_records, rep.n_files, rep.n_seals, rep.last_sealed_seq,
				     rep.unsealed_records, rep.clean_close ? ", closed cleanly" : "");
		else
			r = asprintf(&desc,
				     "%s at record %" PRIu64 " (%s %s, offset %" PRIu64 "): %s; "
				     "%" PRIu64 " records read, %" PRIu64 " seals",
				     rep.status == AUDIT_VERIFY_TAMPERED  ? "tampered" :
				     rep.status == AUDIT_VERIFY_TRUNCATED ? "truncated" :
				     rep.status == AUDIT_VERIFY_GAP	  ? "gap" :
									    "unverifiable",
				     rep.seq,
				     /* audit_verify_journal(): the entry's journal cursor */
				     strchr(rep.file, ';') ? "journal cursor" : "file",
				     rep.file[0] ? rep.file : "-", rep.offset, rep.reason,
				     rep.n_records, rep.n_seals);
		if (r < 0)
			return -ENOMEM;
		*ret_description = desc;
	}
	return (int)rep.status;
}

_public_ int smp_log_verify(const char *dir, const char *key, smp_log_progress progress,
			    void *userdata, char **ret_description)
{
	struct progress_ctx ctx = { progress, userdata };
	struct audit_verify_report rep;
	int r;

	if (dir && !dir[0])
		return -EINVAL;
	r = audit_verify(log_dir(dir), key, progress ? progress_cb : NULL, &ctx, &rep);
	if (r < 0)
		return r;
	return verify_result(&rep, ret_description);
}

_public_ int smp_log_verify_journal(const char *journal_dir, const char *machine_id,
				    const char *hostname, const char *key, const char *local_dir,
				    char **ret_description)
{
	struct audit_verify_report rep;
	char local[96];
	int r;

	if (!journal_dir || !journal_dir[0] || !machine_id == !hostname ||
	    (local_dir && !local_dir[0]))
		return -EINVAL;
	r = audit_verify_journal(journal_dir, machine_id, hostname, key, local_dir, &rep);
	if (r < 0)
		return r;
	if (rep.status != AUDIT_VERIFY_INTACT || !ret_description)
		return verify_result(&rep, ret_description);
	if (rep.local_checked)
		snprintf(local, sizeof(local), "the workstation's log ends at record %" PRIu64,
			 rep.local_last_seq);
	else
		snprintf(local, sizeof(local),
			 "no local log compared: a log cut back there is not seen");
	r = asprintf(ret_description,
		     "intact: %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64 ") at the collector, "
		     "%" PRIu64 " seals, last sealed record %" PRIu64 ", %" PRIu64
		     " records after it not yet sealed, %" PRIu64 " sent without their text; %s",
		     rep.n_records, rep.first_seq, rep.last_seq, rep.n_seals, rep.last_sealed_seq,
		     rep.unsealed_records, rep.n_withheld, local);
	return r < 0 ? -ENOMEM : (int)rep.status;
}

_public_ int64_t smp_log_export(const char *dir, enum smp_log_format format, const char *session,
				const char *client, uint64_t since_usec, uint64_t until_usec,
				FILE *out)
{
	struct audit_export_filter f = {
		.session = session,
		.client = client,
		.since_usec = since_usec,
		.until_usec = until_usec,
	};

	if (!out || (dir && !dir[0]) ||
	    (format != SMP_LOG_FORMAT_JSON && format != SMP_LOG_FORMAT_CSV))
		return -EINVAL;
	return audit_export(log_dir(dir),
			    format == SMP_LOG_FORMAT_JSON ? AUDIT_EXPORT_JSON : AUDIT_EXPORT_CSV,
			    &f, out);
}

/* A session record of the audit log, as audit_sessions_read() reads it:
 * the same reading as ListPastSessions, smp-audit sessions and the report. */
static smp_session *session_from_record(const struct audit_session *a)
{
	const char *last_zone = strrchr(a->zones, ',');
	smp_session *s = smp_session_new_record();

	if (!s)
		return NULL;
	s->active = a->state == AUDIT_SESSION_OPEN;
	s->begin_usec = a->begin_usec;
	s->end_usec = a->end_usec;
	s->needle_on_usec = a->needle_on_ms * 1000;
	s->patch_test_time = a->patch_test_time;
	s->screening_time = a->screening_time;
	if (!(s->id = strdup(a->id)) || !(s->device_serial = strdup(a->device)) ||
	    !(s->client_pseudonym = strdup(a->client)) ||
	    !(s->operator_name = strdup(a->operator_name)) ||
	    /* the current (for an ended session: the last) zone */
	    !(s->zone = strdup(last_zone ? last_zone + 1 : a->zones)) ||
	    !(s->pigment_lot = strdup(a->pigment_lot)) ||
	    !(s->pigment_maker = strdup(a->pigment_manufacturer)) ||
	    !(s->cartridge_id = strdup(a->cartridge)) ||
	    !(s->cartridge_lot = strdup(a->cartridge_lot)) || !(s->needle = strdup(a->needle)) ||
	    !(s->end_reason = strdup(a->end_reason)))
		return smp_session_unref(s);
	return s;
}

/* The smp_session list of the n sessions a (freed here). */
static int session_list(struct audit_session *a, size_t n, smp_session ***ret_sessions)
{
	smp_session **list;

	if (n > INT_MAX - 1) {
		audit_sessions_free(a, n);
		return -E2BIG;
	}
	list = calloc(n + 1, sizeof(*list));
	if (!list) {
		audit_sessions_free(a, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (!(list[i] = session_from_record(&a[i]))) {
			audit_sessions_free(a, n);
			smp_session_list_free(list);
			return -ENOMEM;
		}
	audit_sessions_free(a, n);
	*ret_sessions = list;
	return (int)n;
}

static int list_sessions(const char *dir, const struct audit_session_filter *filter,
			 smp_session ***ret_sessions)
{
	struct audit_session *a = NULL;
	size_t n = 0;
	int r;

	if (!ret_sessions || (dir && !dir[0]))
		return -EINVAL;
	r = audit_sessions_read(log_dir(dir), filter, &a, &n);
	if (r < 0)
		return r;
	return session_list(a, n, ret_sessions);
}

_public_ int smp_log_list_sessions(const char *dir, smp_session ***ret_sessions)
{
	return list_sessions(dir, NULL, ret_sessions);
}

/* A filter of the arguments of the two functions below; -EINVAL when an
 * argument cannot be a filter (an empty string matches no lot: a caller's
 * mistake, not a question). */
static int make_filter(const char *pigment_lot, const char *cartridge_id, const char *cartridge_lot,
		       uint64_t since_usec, uint64_t until_usec, struct audit_session_filter *ret)
{
	if ((pigment_lot && !pigment_lot[0]) || (cartridge_id && !cartridge_id[0]) ||
	    (cartridge_lot && !cartridge_lot[0]) || (until_usec && until_usec <= since_usec))
		return -EINVAL;
	*ret = (struct audit_session_filter){
		.pigment_lot = pigment_lot,
		.cartridge = cartridge_id,
		.cartridge_lot = cartridge_lot,
		.since_usec = since_usec,
		.until_usec = until_usec,
	};
	return 0;
}

_public_ int smp_log_list_sessions_filtered(const char *dir, const char *pigment_lot,
					    const char *cartridge_id, const char *cartridge_lot,
					    uint64_t since_usec, uint64_t until_usec,
					    smp_session ***ret_sessions)
{
	struct audit_session_filter f;
	int r;

	r = make_filter(pigment_lot, cartridge_id, cartridge_lot, since_usec, until_usec, &f);
	if (r < 0)
		return r;
	return list_sessions(dir, &f, ret_sessions);
}

_public_ int smp_log_list_sessions_verified(const char *dir, const char *key, const char *pigment_lot,
					    const char *cartridge_id, const char *cartridge_lot,
					    uint64_t since_usec, uint64_t until_usec,
					    smp_session ***ret_sessions, char **ret_description)
{
	struct audit_verify_report rep;
	struct audit_session_filter f;
	struct audit_session *a = NULL;
	smp_session **list = NULL;
	char *desc = NULL;
	size_t n = 0;
	int r, status;

	if (!key || !ret_sessions || (dir && !dir[0]))
		return -EINVAL;
	r = make_filter(pigment_lot, cartridge_id, cartridge_lot, since_usec, until_usec, &f);
	if (r < 0)
		return r;
	r = audit_sessions_read_verified(log_dir(dir), key, &f, &a, &n, &rep);
	if (r < 0)
		return r;
	status = verify_result(&rep, ret_description ? &desc : NULL);
	if (status < 0) {
		audit_sessions_free(a, n);
		return status;
	}
	if (status == SMP_LOG_INTACT) {
		r = session_list(a, n, &list);
		if (r < 0) {
			free(desc);
			return r;
		}
	}
	*ret_sessions = list;
	if (ret_description)
		*ret_description = desc;
	return status;
}

_public_ int smp_log_export_sessions(const char *dir, enum smp_log_format format,
				     const char *pigment_lot, const char *cartridge_id,
				     const char *cartridge_lot, uint64_t since_usec,
				     uint64_t until_usec, FILE *out)
{
	struct audit_session_filter f;
	struct audit_session *a = NULL;
	size_t n = 0;
	int r;

	if (!out || (dir && !dir[0]) ||
	    (format != SMP_LOG_FORMAT_JSON && format != SMP_LOG_FORMAT_CSV))
		return -EINVAL;
	r = make_filter(pigment_lot, cartridge_id, cartridge_lot, since_usec, until_usec, &f);
	if (r < 0)
		return r;
	r = audit_sessions_read(log_dir(dir), &f, &a, &n);
	if (r < 0)
		return r;
	if (n > INT_MAX) {
		audit_sessions_free(a, n);
		return -E2BIG;
	}
	r = audit_sessions_write(a, n,
				 format == SMP_LOG_FORMAT_JSON ? AUDIT_SESSIONS_JSON :
								 AUDIT_SESSIONS_CSV,
				 out);
	audit_sessions_free(a, n);
	return r < 0 ? r : (int)n;
}

_public_ int smp_log_key_fingerprint(const char *key, char **ret_fingerprint)
{
	char hex[17];
	int r;

	if (!key || !ret_fingerprint)
		return -EINVAL;
	r = audit_vkey_fingerprint(key, hex);
	if (r < 0)
		return r;
	*ret_fingerprint = strdup(hex);
	return *ret_fingerprint ? 0 : -ENOMEM;
}
